import { act, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { BackendSrv, BackendSrvRequest, setBackendSrv } from '@grafana/runtime';
import { of, throwError } from 'rxjs';
import { IncidentNav, IncidentView } from './Incidents';
import { IncidentDetail } from '../types';

// Unit test of the page logic with an in-memory BackendSrv (the real backend
// and analyzer are exercised by the Go tests and the browser suite).
const detail = (status: string): IncidentDetail => ({
  incident: {
    incident_id: 'inc-1',
    version: 2,
    rule_id: 'rule-x',
    rule_title: 'Rule X',
    title: 'Sensitive read then egress',
    summary: 'agent-alpha read a key',
    status,
    severity: 'high',
    tags: [],
    finding_count: 2,
    first_seen: '2026-01-02T03:04:05Z',
    last_seen: '2026-01-02T03:05:05Z',
    agent_id: 'agent-alpha',
    user_id: 'alice',
    session_key: 's0',
    server_name: 'http',
    tool_name: 'fetch',
    assignee: '',
    updated_by: '',
    note: '',
  },
  findings: [],
  events: [],
  actions: [],
  playbook_steps: [{ run_id: 'run-1', playbook: 'contain', step: 'revoke-token', target: 'agent', status: 'waiting_approval', ts: '2026-01-02T03:04:05Z', actor: 'analyzer' }],
});

function fakeBackend(posts: string[]) {
  let status = 'open';
  const srv = {
    fetch: (req: BackendSrvRequest) => {
      if (req.method === 'POST') {
        posts.push(req.url);
        if (req.url.endsWith('/acknowledge')) {
          status = 'acknowledged';
        }
        return of({ data: { ok: true }, status: 200 });
      }
      if (req.url.endsWith('/incidents/inc-1')) {
        return of({ data: detail(status), status: 200 });
      }
      return throwError(() => ({ status: 404, data: { error: 'not found' } }));
    },
  };
  setBackendSrv(srv as unknown as BackendSrv);
}

const nav = (canAct: boolean): IncidentNav => ({
  go: () => {},
  me: { login: canAct ? 'alice' : 'vera', role: canAct ? 'Editor' : 'Viewer', canAct, analyzer: true },
});

describe('Incident detail', () => {
  it('disables actions for viewers', async () => {
    const posts: string[] = [];
    fakeBackend(posts);
    render(<IncidentView id="inc-1" nav={nav(false)} />);
    await screen.findByTestId('incident-title');
    expect((screen.getByTestId('btn-acknowledge') as HTMLButtonElement).disabled).toBe(true);
    expect((screen.getByTestId('approve-revoke-token') as HTMLButtonElement).disabled).toBe(true);
    expect(screen.getByTestId('viewer-note').textContent).toContain('Viewer');
    expect(posts).toEqual([]);
  });

  it('acknowledges and approves for editors, then reloads', async () => {
    const posts: string[] = [];
    fakeBackend(posts);
    render(<IncidentView id="inc-1" nav={nav(true)} />);
    await screen.findByTestId('incident-title');
    await act(async () => {
      fireEvent.click(screen.getByTestId('btn-acknowledge'));
    });
    await waitFor(() => expect(screen.getByTestId('incident-status').textContent).toBe('acknowledged'));
    await act(async () => {
      fireEvent.click(screen.getByTestId('approve-revoke-token'));
    });
    expect(posts).toEqual([
      '/api/plugins/mcpwatch-mcpwatch-app/resources/incidents/inc-1/acknowledge',
      '/api/plugins/mcpwatch-mcpwatch-app/resources/incidents/inc-1/playbook-runs/run-1/steps/revoke-token/approve',
    ]);
  });
});
