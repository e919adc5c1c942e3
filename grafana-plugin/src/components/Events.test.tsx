import { render, screen } from '@testing-library/react';
import { EventsTable } from './Events';
import { EventRow } from '../types';

const ev = (id: string, args: string, tags: string[] = []): EventRow => ({
  event_id: id,
  ts: '2026-01-02T03:04:05Z',
  ts_ns: 1,
  duration_ns: 1,
  agent_id: 'agent-alpha',
  user_id: 'alice',
  session_key: 's1',
  method: 'tools/call',
  server_name: 'http',
  tool_name: 'fetch',
  arguments: args,
  result: '{"status":200}',
  outcome: 'ok',
  error_type: '',
  tags,
});

describe('EventsTable', () => {
  it('shows arguments as stored and highlights redactions', () => {
    render(
      <EventsTable
        events={[ev('e1', '{"body":"[REDACTED:private_key:9f8e7d6c]"}', ['secret:private_key']), ev('e2', '{"url":"https://x.example"}')]}
        testId="t"
      />
    );
    expect(screen.getAllByTestId('event-row')).toHaveLength(2);
    const marks = screen.getAllByTestId('redaction');
    expect(marks).toHaveLength(1);
    expect(marks[0].tagName).toBe('MARK');
    expect(marks[0].textContent).toBe('[REDACTED:private_key:9f8e7d6c]');
    expect(screen.getByText('secret:private_key')).toBeTruthy();
    expect(screen.getByText(/https:\/\/x\.example/)).toBeTruthy();
  });
});
