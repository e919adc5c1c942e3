// A tool's definition history as the Tools page shows it: the analyzer's
// diff facts (DiffSummary) and the two definitions side by side, changed
// lines marked; a button per change picks which pair is shown.
import { useState } from 'react';
import { Button } from '@grafana/ui';
import { DefinitionDiff, ToolDefinition } from '../types';
import { diffLines, fmtTime, pretty } from '../format';
import { useTableStyles } from './common';

function Side({ def, other, left }: { def: ToolDefinition; other?: ToolDefinition; left: boolean }) {
  const s = useTableStyles();
  const text = (d?: ToolDefinition) => (d ? `${d.description}\n\n${pretty(d.input_schema)}\n\n${pretty(d.annotations)}` : '');
  const diff = diffLines(left ? text(def) : text(other), left ? text(other) : text(def));
  const lines = left ? diff.left : diff.right;
  return (
    <div data-testid={left ? 'def-old' : 'def-new'}>
      <h4>
        {def.definition_hash} <span className={s.muted}>first seen {fmtTime(def.first_seen)}, last seen {fmtTime(def.last_seen)}</span>
      </h4>
      <pre className={s.pre}>
        {lines.map(([l, changed], i) => (
          <div key={i} className={changed && other ? (left ? s.removed : s.added) : undefined}>
            {l || ' '}
          </div>
        ))}
      </pre>
    </div>
  );
}

/** The facts that changed, as the analyzer's mcp-tool-definition-changed rule judges them. */
export function DiffSummary({ def }: { def: ToolDefinition }) {
  const s = useTableStyles();
  const d: DefinitionDiff | null = def.diff;
  if (!d) {
    return (
      <p className={s.muted} data-testid="def-diff">
        What changed is not recorded for this definition (seen before the analyzer kept definition facts).
      </p>
    );
  }
  const rows: Array<[string, string[], string]> = [
    ['Parameters added', d.params_added, s.added],
    ['Parameters removed', d.params_removed, s.removed],
    ['New hosts', d.hosts_added, s.added],
    ['New email addresses', d.emails_added, s.added],
    ['New paths', d.paths_added, s.added],
    ['Instruction-like text', d.instructions_added, s.added],
    ['Annotation hints', d.hints_changed, s.added],
  ];
  const shown = rows.filter(([, xs]) => xs.length > 0);
  const version =
    d.previous_version || def.server_version
      ? `${d.previous_version || '?'} → ${def.server_version || '?'}${d.version_bump ? '' : ' (no version change)'}`
      : 'not reported';
  return (
    <table className={s.table} data-testid="def-diff">
      <tbody>
        <tr>
          <th>Server version</th>
          <td>{version}</td>
        </tr>
        {shown.map(([label, xs, cls]) => (
          <tr key={label}>
            <th>{label}</th>
            <td className={cls}>{xs.join(', ')}</td>
          </tr>
        ))}
        {shown.length === 0 && (
          <tr>
            <th>Facts</th>
            <td className={s.muted}>no parameter, address, path, instruction or hint changed (text only)</td>
          </tr>
        )}
      </tbody>
    </table>
  );
}

/** The history of one tool's definitions, oldest first: the newest change is shown first. */
export function DefinitionHistory({ defs }: { defs: ToolDefinition[] }) {
  const s = useTableStyles();
  const [idx, setIdx] = useState<number>();
  if (defs.length === 0) {
    return <p className={s.muted}>No definitions recorded.</p>;
  }
  if (defs.length === 1) {
    return <Side def={defs[0]} left={false} />;
  }
  const i = idx !== undefined && idx < defs.length ? idx : defs.length - 1;
  return (
    <>
      <div className={s.toolbar}>
        {defs.slice(1).map((x, k) => (
          <Button key={x.definition_hash} size="sm" variant={k + 1 === i ? 'primary' : 'secondary'} onClick={() => setIdx(k + 1)} data-testid={`def-pair-${k + 1}`}>
            {defs[k].definition_hash} → {x.definition_hash}
          </Button>
        ))}
      </div>
      <DiffSummary def={defs[i]} />
      <div className={s.two}>
        <Side def={defs[i - 1]} other={defs[i]} left />
        <Side def={defs[i]} other={defs[i - 1]} left={false} />
      </div>
    </>
  );
}
