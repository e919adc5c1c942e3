import { act, render, screen, waitFor } from '@testing-library/react';
import { BackendSrv, BackendSrvRequest, setBackendSrv } from '@grafana/runtime';
import { Observable, Subject, of, throwError } from 'rxjs';
import { AgentContent } from './AgentContent';
import { AgentContents, AgentRow, Content, ContentRules } from '../types';

// The agents' content list and the agent page's content section, with an
// in-memory BackendSrv answering as the backend does (the real backend is
// exercised by the Go tests and the browser suite).
const rules: ContentRules = {
  arguments: ['mcp-secret-in-arguments', 'mcp-shell-injection'],
  result: ['mcp-secret-in-result'],
  tool_definitions: ['mcp-tool-description-injection'],
};

const from = Date.parse('2026-01-02T00:00:00Z');

const content = (over: Partial<Content>): Content => ({
  calls: 10,
  with_arguments: 10,
  result_calls: 8,
  with_result: 8,
  lists: 2,
  with_definitions: 2,
  level: 'full',
  share: 1,
  since: '2026-01-02T00:00:00Z',
  missing: [],
  sources: ['span/client'],
  ...over,
});

const row = (id: string, c: Content): AgentRow & { content: Content } => ({
  agent_id: id,
  agent_name: '',
  user_id: '',
  client_name: '',
  calls: c.calls,
  errors: 0,
  denials: 0,
  servers: 1,
  tools: 1,
  last_seen: '2026-01-02T03:04:05Z',
  content: c,
});

const withContent = [
  row('agent-full', content({})),
  row('agent-partial', content({ with_arguments: 5, with_result: 4, with_definitions: 0, level: 'partial', share: 0.45, missing: ['arguments', 'result', 'tool_definitions'], since: '2026-01-02T02:00:00Z' })),
  row('agent-none', content({ with_arguments: 0, with_result: 0, with_definitions: 0, level: 'none', share: 0, missing: ['arguments', 'result', 'tool_definitions'] })),
  row('(no agent id)', content({ calls: 0, result_calls: 0, with_arguments: 0, with_result: 0, lists: 0, with_definitions: 0, level: 'no_calls', share: 0, sources: [] })),
];

// The agents table's rows carry no content: it comes from agent-content.
const agents: AgentRow[] = withContent.map(({ content: _, ...r }) => r);
const contents = (ids: string[]): AgentContents => ({
  content: Object.fromEntries(withContent.filter((r) => ids.includes(r.agent_id)).map((r) => [r.agent_id, r.content])),
  content_rules: rules,
});

type Answer = Observable<{ data: unknown; status: number }>;

/** contentAnswer, when given, answers agent-content (e.g. a Subject that answers later). */
function fakeBackend(contentAnswer?: (params: Record<string, string>) => Answer) {
  const asked: Array<Record<string, string>> = [];
  const srv = {
    fetch: (req: BackendSrvRequest) => {
      if (req.url.endsWith('/resources/agent-content')) {
        const params = req.params as Record<string, string>;
        asked.push(params);
        if (contentAnswer) {
          return contentAnswer(params);
        }
        return of({ data: contents(params.agent ? [params.agent] : agents.map((a) => a.agent_id)), status: 200 });
      }
      return throwError(() => ({ status: 404, data: { error: 'not found' } }));
    },
  };
  setBackendSrv(srv as unknown as BackendSrv);
  return asked;
}

const to = from + 6 * 3600_000;

describe('Agents content', () => {
  it('says full, partial (n%), none, no calls, and names the rules that cannot fire', async () => {
    const asked = fakeBackend();
    render(<AgentContent from={from} to={to} tenant="" />);
    await waitFor(() => expect(screen.getByTestId('agents-content').getAttribute('data-content')).toBe('loaded'));
    // The list asks for every agent of the range, with the scene's range.
    expect(asked).toEqual([{ from, to }]);
    expect(screen.getByRole('columnheader', { name: 'Content' })).toBeTruthy();
    const cell = (id: string) => screen.getByTestId(`agent-content-${id}`);
    expect(cell('agent-full').textContent).toBe('full');
    expect(cell('agent-partial').textContent).toBe('partial (45%)');
    expect(cell('agent-none').textContent).toBe('none');
    expect(cell('(no agent id)').textContent).toBe('no calls');

    const full = cell('agent-full').getAttribute('title') ?? '';
    expect(full).toContain('Arguments: 10 of 10 tools/call calls (100%)');
    expect(full).not.toContain('cannot fire');
    expect(full).not.toContain('newest calls');

    const partial = cell('agent-partial').getAttribute('title') ?? '';
    expect(partial).toContain('Arguments: 5 of 10 tools/call calls (50%)');
    expect(partial).toContain('Results: 4 of 8 tools/call calls with an ok or tool_error outcome (50%)');
    expect(partial).toContain('Tool definitions: 0 of 2 tools/list calls (0%)');
    expect(partial).toContain('Without arguments these rules cannot fire: mcp-secret-in-arguments, mcp-shell-injection');
    expect(partial).toContain('Without tool definitions these rules cannot fire: mcp-tool-description-injection');
    expect(partial).toContain("Counted on the agent's newest calls, since 2026-01-02 02:00:00Z.");
    expect(partial).toContain('Seen from: span/client');

    expect(cell('agent-none').getAttribute('title')).toContain('Without results these rules cannot fire: mcp-secret-in-result');
    expect(cell('(no agent id)').getAttribute('title')).toBe('No tools/call or tools/list calls in the range.');
    expect(screen.getByTestId('agent-content-row-(no agent id)').textContent).toContain('(no agent id)');
  });

  it('shows the three shares on the agent page, for its tenant', async () => {
    const asked = fakeBackend();
    render(<AgentContent from={from} to={to} tenant="acme" agent="agent-partial" />);
    await waitFor(() => expect(screen.getByTestId('agent-content').getAttribute('data-state')).toBe('loaded'));
    // The page reads its agent's content only.
    expect(asked).toEqual([{ from, to, tenant: 'acme', agent: 'agent-partial' }]);
    expect(screen.getByTestId('agent-content-level').textContent).toBe('partial (45%)');
    expect(screen.getAllByTestId('agent-content-share').map((e) => e.textContent)).toEqual([
      'Arguments: 5 of 10 tools/call calls (50%)',
      'Results: 4 of 8 tools/call calls with an ok or tool_error outcome (50%)',
      'Tool definitions: 0 of 2 tools/list calls (0%)',
    ]);
    expect(screen.getByTestId('agent-content-rules-result').textContent).toContain('mcp-secret-in-result');
    expect(screen.getByTestId('agent-content-since').textContent).toContain('2026-01-02 02:00:00Z');
  });

  it('says loading until the content is there, then fills the cells', async () => {
    const later = new Subject<{ data: unknown; status: number }>();
    fakeBackend(() => later);
    render(<AgentContent from={from} to={to} tenant="" />);
    await waitFor(() => expect(screen.getByTestId('agents-content').getAttribute('data-content')).toBe('loading'));
    act(() => {
      later.next({ data: contents(agents.map((a) => a.agent_id)), status: 200 });
      later.complete();
    });
    const cell = (id: string) => screen.getByTestId(`agent-content-${id}`);
    await waitFor(() => expect(cell('agent-full').textContent).toBe('full'));
    expect(cell('agent-partial').textContent).toBe('partial (45%)');
    expect(screen.getByTestId('agents-content').getAttribute('data-content')).toBe('loaded');
  });

  it('says why when the content cannot be loaded', async () => {
    fakeBackend(() => throwError(() => ({ status: 500, data: { error: 'cannot query agent events: timeout' } })));
    render(<AgentContent from={from} to={to} tenant="" />);
    await waitFor(() => expect(screen.getByTestId('agents-content').getAttribute('data-content')).toBe('error'));
    expect(screen.getByTestId('agents-content-error').textContent).toContain('cannot query agent events: timeout');
  });

  it('shows an error on the agent page as unavailable with the reason', async () => {
    fakeBackend(() => throwError(() => ({ status: 500, data: { error: 'cannot query agent events: timeout' } })));
    render(<AgentContent from={from} to={to} tenant="" agent="agent-full" />);
    await waitFor(() => expect(screen.getByTestId('agent-content-level').getAttribute('data-level')).toBe('error'));
    expect(screen.getByTestId('agent-content-level').textContent).toBe('unavailable');
    expect(screen.getByTestId('agent-content-level').getAttribute('title')).toContain('cannot query agent events: timeout');
  });
});
