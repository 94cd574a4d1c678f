/**
 * MLflow's SQL tracking schema as natix writes it into a new `mlflow.db`, pinned to one alembic revision.
 *
 * Pinned revision: 3500859a5d39 ("Add Model Aliases table", the head of MLflow 2.3.0). The tables below are the ones
 * MLflow's migrations produce at that revision (same tables, columns, types, keys, constraint names and indexes),
 * with `alembic_version` stamped to it. Why an older revision than the newest MLflow: every MLflow release since
 * then, on opening a database that lacks any of its tables, runs `alembic upgrade heads` from the stamped revision by
 * itself (`_safe_initialize_tables`), so `mlflow ui` / `mlflow.set_tracking_uri("sqlite:///mlflow.db")` of MLflow
 * >= 2.4, 3.13 included, open natix's database with no flags and migrate it in place. `mlflow db upgrade
 * sqlite:///mlflow.db` does the same explicitly. A database MLflow already migrated further is written into when
 * the columns natix uses are there and every other NOT NULL column has a default (`checkCompatible`), and refused
 * otherwise with a message that names what is missing.
 */

export const MLFLOW_SCHEMA_REVISION = '3500859a5d39';
export const MLFLOW_SCHEMA_RELEASE = 'MLflow 2.3.0';

/** The DDL of the pinned revision, in creation order (parents before children). */
export const MLFLOW_SCHEMA_DDL: readonly string[] = [
  `CREATE TABLE alembic_version (
  version_num VARCHAR(32) NOT NULL,
  CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
)`,
  `CREATE TABLE experiments (
  experiment_id INTEGER NOT NULL,
  name VARCHAR(256) NOT NULL,
  artifact_location VARCHAR(256),
  lifecycle_stage VARCHAR(32),
  creation_time BIGINT,
  last_update_time BIGINT,
  CONSTRAINT experiment_pk PRIMARY KEY (experiment_id),
  UNIQUE (name),
  CONSTRAINT experiments_lifecycle_stage CHECK (lifecycle_stage IN ('active', 'deleted'))
)`,
  `CREATE TABLE experiment_tags (
  key VARCHAR(250) NOT NULL,
  value VARCHAR(5000),
  experiment_id INTEGER NOT NULL,
  CONSTRAINT experiment_tag_pk PRIMARY KEY (key, experiment_id),
  FOREIGN KEY(experiment_id) REFERENCES experiments (experiment_id)
)`,
  `CREATE TABLE runs (
  run_uuid VARCHAR(32) NOT NULL,
  name VARCHAR(250),
  source_type VARCHAR(20),
  source_name VARCHAR(500),
  entry_point_name VARCHAR(50),
  user_id VARCHAR(256),
  status VARCHAR(9),
  start_time BIGINT,
  end_time BIGINT,
  source_version VARCHAR(50),
  lifecycle_stage VARCHAR(20),
  artifact_uri VARCHAR(200),
  experiment_id INTEGER,
  deleted_time BIGINT,
  CONSTRAINT run_pk PRIMARY KEY (run_uuid),
  FOREIGN KEY(experiment_id) REFERENCES experiments (experiment_id),
  CONSTRAINT runs_lifecycle_stage CHECK (lifecycle_stage IN ('active', 'deleted')),
  CONSTRAINT source_type CHECK (source_type IN ('NOTEBOOK', 'JOB', 'LOCAL', 'UNKNOWN', 'PROJECT')),
  CHECK (status IN ('SCHEDULED', 'FAILED', 'FINISHED', 'RUNNING', 'KILLED'))
)`,
  `CREATE TABLE tags (
  key VARCHAR(250) NOT NULL,
  value VARCHAR(5000),
  run_uuid VARCHAR(32) NOT NULL,
  CONSTRAINT tag_pk PRIMARY KEY (key, run_uuid),
  FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid)
)`,
  `CREATE TABLE params (
  key VARCHAR(250) NOT NULL,
  value VARCHAR(500) NOT NULL,
  run_uuid VARCHAR(32) NOT NULL,
  CONSTRAINT param_pk PRIMARY KEY (key, run_uuid),
  FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid)
)`,
  `CREATE TABLE metrics (
  key VARCHAR(250) NOT NULL,
  value FLOAT NOT NULL,
  timestamp BIGINT NOT NULL,
  run_uuid VARCHAR(32) NOT NULL,
  step BIGINT DEFAULT '0' NOT NULL,
  is_nan BOOLEAN DEFAULT '0' NOT NULL,
  CONSTRAINT metric_pk PRIMARY KEY (key, timestamp, step, run_uuid, value, is_nan),
  FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid),
  CHECK (is_nan IN (0, 1))
)`,
  `CREATE TABLE latest_metrics (
  key VARCHAR(250) NOT NULL,
  value FLOAT NOT NULL,
  timestamp BIGINT,
  step BIGINT NOT NULL,
  is_nan BOOLEAN NOT NULL,
  run_uuid VARCHAR(32) NOT NULL,
  CONSTRAINT latest_metric_pk PRIMARY KEY (key, run_uuid),
  FOREIGN KEY(run_uuid) REFERENCES runs (run_uuid),
  CHECK (is_nan IN (0, 1))
)`,
  `CREATE TABLE registered_models (
  name VARCHAR(256) NOT NULL,
  creation_time BIGINT,
  last_updated_time BIGINT,
  description VARCHAR(5000),
  CONSTRAINT registered_model_pk PRIMARY KEY (name),
  UNIQUE (name)
)`,
  `CREATE TABLE registered_model_tags (
  key VARCHAR(250) NOT NULL,
  value VARCHAR(5000),
  name VARCHAR(256) NOT NULL,
  CONSTRAINT registered_model_tag_pk PRIMARY KEY (key, name),
  FOREIGN KEY(name) REFERENCES registered_models (name) ON UPDATE CASCADE
)`,
  `CREATE TABLE model_versions (
  name VARCHAR(256) NOT NULL,
  version INTEGER NOT NULL,
  creation_time BIGINT,
  last_updated_time BIGINT,
  description VARCHAR(5000),
  user_id VARCHAR(256),
  current_stage VARCHAR(20),
  source VARCHAR(500),
  run_id VARCHAR(32),
  status VARCHAR(20),
  status_message VARCHAR(500),
  run_link VARCHAR(500),
  CONSTRAINT model_version_pk PRIMARY KEY (name, version),
  FOREIGN KEY(name) REFERENCES registered_models (name) ON UPDATE CASCADE
)`,
  `CREATE TABLE model_version_tags (
  key VARCHAR(250) NOT NULL,
  value VARCHAR(5000),
  name VARCHAR(256) NOT NULL,
  version INTEGER NOT NULL,
  CONSTRAINT model_version_tag_pk PRIMARY KEY (key, name, version),
  FOREIGN KEY(name, version) REFERENCES model_versions (name, version) ON UPDATE CASCADE
)`,
  `CREATE TABLE registered_model_aliases (
  name VARCHAR(256) NOT NULL,
  alias VARCHAR(256) NOT NULL,
  version INTEGER NOT NULL,
  CONSTRAINT registered_model_alias_pk PRIMARY KEY (name, alias),
  CONSTRAINT registered_model_alias_name_fkey FOREIGN KEY(name) REFERENCES registered_models (name) ON DELETE CASCADE ON UPDATE CASCADE
)`,
  'CREATE INDEX index_params_run_uuid ON params (run_uuid)',
  'CREATE INDEX index_metrics_run_uuid ON metrics (run_uuid)',
  'CREATE INDEX index_latest_metrics_run_uuid ON latest_metrics (run_uuid)',
  'CREATE INDEX index_tags_run_uuid ON tags (run_uuid)',
];

/** The columns natix writes, per table: a database (of any revision) must have them all to be written into. */
export const COLUMNS_NATIX_WRITES: Readonly<Record<string, readonly string[]>> = {
  experiments: ['experiment_id', 'name', 'artifact_location', 'lifecycle_stage', 'creation_time', 'last_update_time'],
  experiment_tags: ['key', 'value', 'experiment_id'],
  runs: ['run_uuid', 'name', 'source_type', 'source_name', 'entry_point_name', 'user_id', 'status', 'start_time', 'end_time', 'source_version', 'lifecycle_stage', 'artifact_uri', 'experiment_id'],
  tags: ['key', 'value', 'run_uuid'],
  params: ['key', 'value', 'run_uuid'],
  metrics: ['key', 'value', 'timestamp', 'run_uuid', 'step', 'is_nan'],
  latest_metrics: ['key', 'value', 'timestamp', 'step', 'is_nan', 'run_uuid'],
  registered_models: ['name', 'creation_time', 'last_updated_time', 'description'],
  model_versions: ['name', 'version', 'creation_time', 'last_updated_time', 'description', 'user_id', 'current_stage', 'source', 'run_id', 'status', 'status_message', 'run_link'],
  registered_model_aliases: ['name', 'alias', 'version'],
};

export interface ColumnInfo {
  name: string;
  notnull: number | bigint;
  dflt_value: unknown;
}

/**
 * Why natix cannot write into a database with these tables, or undefined when it can: every table and column natix
 * writes must exist, and every other NOT NULL column must have a default (a newer MLflow may add columns; natix
 * leaves them to their defaults).
 */
export function incompatibility(columnsOf: (table: string) => ColumnInfo[]): string | undefined {
  const problems: string[] = [];
  for (const [table, used] of Object.entries(COLUMNS_NATIX_WRITES)) {
    const columns = columnsOf(table);
    if (columns.length === 0) {
      problems.push(`table ${table} is missing`);
      continue;
    }
    const names = new Set(columns.map((c) => c.name));
    const missing = used.filter((c) => !names.has(c));
    if (missing.length) problems.push(`${table} lacks ${missing.join(', ')}`);
    const required = columns.filter((c) => Number(c.notnull) === 1 && c.dflt_value === null && !used.includes(c.name));
    if (required.length) problems.push(`${table} requires ${required.map((c) => c.name).join(', ')} (no default)`);
  }
  return problems.length ? problems.join('; ') : undefined;
}
