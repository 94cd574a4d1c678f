/**
 * Secrets never leave natix through what it prints or writes: every tracking message (warnings, errors, spool
 * records, `tracking sync` results) passes through `redactSecrets`, and every URL natix prints or stores passes
 * through `stripUserinfo`. Credentials live in memory only, to build the Authorization header.
 */

const REDACTED = '[REDACTED]';

/** Environment variables whose values are secrets wherever they show up. */
export const SECRET_ENV_VARS = ['MLFLOW_TRACKING_TOKEN', 'MLFLOW_TRACKING_PASSWORD', 'HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HUGGINGFACE_TOKEN'] as const;

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Replaces anything that looks like a credential: `Bearer x` values, `Authorization: x` and `"authorization": "x"`
 * values (whatever the scheme), userinfo in URLs, and the literal values (and the Basic encoding) of the secret
 * environment variables and of any `extra` secrets (e.g. a password taken from a URL). Plain words such as "Basic"
 * are left alone, so ordinary messages stay readable.
 */
export function redactSecrets(text: string, env: NodeJS.ProcessEnv = {}, extra: string[] = []): string {
  let out = text;
  const literals = new Set<string>();
  for (const name of SECRET_ENV_VARS) {
    const value = env[name];
    if (value && value.length >= 4) literals.add(value);
  }
  for (const value of extra) if (value && value.length >= 4) literals.add(value);
  if (env.MLFLOW_TRACKING_USERNAME && env.MLFLOW_TRACKING_PASSWORD) literals.add(Buffer.from(`${env.MLFLOW_TRACKING_USERNAME}:${env.MLFLOW_TRACKING_PASSWORD}`).toString('base64'));
  // Longest first, so a secret that contains another is replaced whole.
  for (const value of [...literals].sort((a, b) => b.length - a.length)) out = out.replace(new RegExp(escapeRegExp(value), 'g'), REDACTED);
  out = out.replace(/\b(Bearer)(\s+|%20)(?!\[REDACTED\])[^\s"',;}\]\\]+/gi, `$1$2${REDACTED}`);
  out = out.replace(/(["']?(?:proxy-)?authorization["']?[ \t]*[:=][ \t]*)(["']?)(?![ \t])[^"'\r\n,}]*/gi, (_m, head: string, quote: string) => `${head}${quote}${REDACTED}`);
  out = out.replace(/([a-z][a-z0-9+.-]*:\/\/)[^/\s:@"']+(?::[^/\s@"']*)?@/gi, '$1');
  return out;
}

/** The URL without `user:password@` (for printing and storing); unparsable text is returned redacted. */
export function stripUserinfo(url: string): string {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return url;
    parsed.username = '';
    parsed.password = '';
    return parsed.href.replace(/\/$/, url.endsWith('/') ? '/' : '');
  } catch {
    return redactSecrets(url);
  }
}

/** `user:password@` of a URL, decoded; undefined when there is none. */
export function userinfoOf(url: string): {username: string; password: string} | undefined {
  try {
    const parsed = new URL(url);
    if (!parsed.username && !parsed.password) return undefined;
    return {username: decodeURIComponent(parsed.username), password: decodeURIComponent(parsed.password)};
  } catch {
    return undefined;
  }
}
