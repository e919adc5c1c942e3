// What content agents' calls carry (GET /agent-content): per agent a level
// with the explanation as its tooltip (the list), or one agent's shares and
// the rules that cannot fire without the missing content (its page).
import { getResource } from '../api';
import { AgentContents } from '../types';
import { ContentCell, ContentDetail } from './Content';
import { Section, useLoad, useTableStyles } from './common';

export interface AgentContentProps {
  /** Time range in epoch ms. */
  from: number;
  to: number;
  /** '' for every tenant the reader may see. */
  tenant: string;
  /** One agent (its page), or every agent active in the range. */
  agent?: string;
}

export function AgentContent({ from, to, tenant, agent }: AgentContentProps) {
  const s = useTableStyles();
  const [d, error, loading] = useLoad(() => getResource<AgentContents>('agent-content', { from, to, tenant, agent }), [from, to, tenant, agent]);
  const load = { data: d, error, loading };
  if (agent) {
    return (
      <Section title="Content of the calls" testId="agent-content-section">
        <ContentDetail content={d?.content[agent]} rules={d?.content_rules} from={from} load={load} />
      </Section>
    );
  }
  const ids = Object.keys(d?.content ?? {}).sort();
  return (
    <Section title="Content of each agent's calls">
      <table className={s.table} data-testid="agents-content" data-content={loading ? 'loading' : error ? 'error' : 'loaded'}>
        <thead>
          <tr>
            <th>Agent</th>
            <th>Content</th>
          </tr>
        </thead>
        <tbody>
          {ids.map((id) => (
            <tr key={id} data-testid={`agent-content-row-${id}`}>
              <td>{id}</td>
              <td>
                <ContentCell content={d?.content[id]} rules={d?.content_rules} from={from} testId={`agent-content-${id}`} load={load} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {error && (
        <p className={s.muted} data-testid="agents-content-error">
          Cannot load the content of the calls: {error}
        </p>
      )}
    </Section>
  );
}
