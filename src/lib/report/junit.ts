/** JUnit XML for CI systems: one testcase per gate; FAIL and INVALID are failures, WARN passes with a note. */
import type {GateResult, Verdict} from '../bench/gates.js';

function xml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({'<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;'})[c]!);
}

export function junitXml(suite: string, gates: GateResult[], verdict: Verdict, seconds: number): string {
  const failures = gates.filter((g) => g.verdict === 'FAIL' || g.verdict === 'INVALID').length;
  const cases = gates.map((g) => {
    const head = `  <testcase classname="${xml(suite)}" name="${xml(g.name)}" time="0">`;
    if (g.verdict === 'FAIL' || g.verdict === 'INVALID') return `${head}\n    <failure type="${g.verdict}" message="${xml(g.message)}"/>\n  </testcase>`;
    return `${head}\n    <system-out>${xml(`${g.verdict}: ${g.message}`)}</system-out>\n  </testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuite name="${xml(suite)}" tests="${gates.length}" failures="${failures}" errors="0" time="${seconds.toFixed(3)}">`,
    `  <properties><property name="verdict" value="${verdict}"/></properties>`,
    ...cases,
    '</testsuite>',
    '',
  ].join('\n');
}
