import { Content, ContentKind, ContentRules } from '../types';
import { fmtNum, fmtTime } from '../format';

const KINDS: Array<{ kind: ContentKind; label: string; of: string; got: (c: Content) => number; all: (c: Content) => number }> = [
  { kind: 'arguments', label: 'Arguments', of: 'tools/call calls', got: (c) => c.with_arguments, all: (c) => c.calls },
  { kind: 'result', label: 'Results', of: 'tools/call calls with an ok or tool_error outcome', got: (c) => c.with_result, all: (c) => c.result_calls },
  { kind: 'tool_definitions', label: 'Tool definitions', of: 'tools/list calls', got: (c) => c.with_definitions, all: (c) => c.lists },
];

function pct(got: number, all: number): string {
  return `${Math.floor((got / all) * 100)}%`;
}

/** "full", "partial (n%)", "none" or "no calls". */
export function contentLabel(c: Content | undefined): string {
  switch (c?.level) {
    case 'full':
      return 'full';
    case 'none':
      return 'none';
    case 'partial':
      return `partial (${Math.floor(c.share * 100)}%)`;
    default:
      return 'no calls';
  }
}

/** One line per content kind: "Arguments: 12 of 40 tools/call calls (30%)". */
export function contentShares(c: Content): string[] {
  return KINDS.map((k) => {
    const all = k.all(c);
    return all === 0 ? `${k.label}: no ${k.of}` : `${k.label}: ${fmtNum(k.got(c))} of ${fmtNum(all)} ${k.of} (${pct(k.got(c), all)})`;
  });
}

/** Tooltip text: the shares, the window, the rules that cannot fire without the missing content, the instrumentation seen. */
export function contentTooltip(c: Content | undefined, rules: ContentRules | undefined, from?: number): string {
  if (!c || c.level === 'no_calls') {
    return 'No tools/call or tools/list calls in the range.';
  }
  const lines = contentShares(c);
  if (from !== undefined && new Date(c.since).getTime() > from) {
    lines.push(`Counted on the agent's newest calls, since ${fmtTime(c.since)}.`);
  }
  for (const k of KINDS) {
    if (c.missing.includes(k.kind)) {
      const r = rules?.[k.kind] ?? [];
      lines.push(`Without ${k.label.toLowerCase()} these rules cannot fire: ${r.length ? r.join(', ') : '(none)'}`);
    }
  }
  if (c.sources.length) {
    lines.push(`Seen from: ${c.sources.join(', ')}`);
  }
  return lines.join('\n');
}

/** The content as loaded after the rest of the page (GET agent-content): pending until it is there. */
export interface ContentLoad {
  loading?: boolean;
  error?: string;
}

/** The Content column of the agents table ("…" while the content loads). */
export function ContentCell({ content, rules, from, testId, load }: { content?: Content; rules?: ContentRules; from?: number; testId?: string; load?: ContentLoad }) {
  if (load?.loading) {
    return (
      <span title="Loading the content of the calls…" data-testid={testId} data-level="loading">
        …
      </span>
    );
  }
  if (load?.error) {
    return (
      <span title={`Cannot load the content of the calls: ${load.error}`} data-testid={testId} data-level="error">
        unavailable
      </span>
    );
  }
  return (
    <span title={contentTooltip(content, rules, from)} data-testid={testId} data-level={content?.level ?? 'no_calls'}>
      {contentLabel(content)}
    </span>
  );
}

/** The agent page's content section: the level and the three shares. */
export function ContentDetail({ content, rules, from, load }: { content?: Content; rules?: ContentRules; from?: number; load?: ContentLoad }) {
  const state = load?.loading ? 'loading' : load?.error ? 'error' : 'loaded';
  return (
    <div data-testid="agent-content" data-state={state}>
      <p>
        <strong>
          <ContentCell content={content} rules={rules} from={from} testId="agent-content-level" load={load} />
        </strong>
      </p>
      {state === 'loaded' && content && content.level !== 'no_calls' && (
        <ul>
          {contentShares(content).map((l) => (
            <li key={l} data-testid="agent-content-share">
              {l}
            </li>
          ))}
        </ul>
      )}
      {content && from !== undefined && new Date(content.since).getTime() > from && (
        <p data-testid="agent-content-since">Counted on the agent&apos;s newest calls, since {fmtTime(content.since)}.</p>
      )}
      {KINDS.filter((k) => content?.missing.includes(k.kind)).map((k) => (
        <p key={k.kind} data-testid={`agent-content-rules-${k.kind}`}>
          Without {k.label.toLowerCase()} these rules cannot fire: {(rules?.[k.kind] ?? []).join(', ')}
        </p>
      ))}
    </div>
  );
}
