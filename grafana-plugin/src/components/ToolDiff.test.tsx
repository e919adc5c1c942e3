import { render, screen } from '@testing-library/react';
import { DiffSummary } from './ToolDiff';
import { ToolDefinition } from '../types';

// The definition diff the backend returns (tooldiff.go), as the Tools page
// shows it above the two definitions.
const def = (over: Partial<ToolDefinition>): ToolDefinition => ({
  server_name: 'email',
  tool_name: 'send_email',
  definition_hash: 'h2',
  first_seen: '2026-01-02T00:00:00Z',
  last_seen: '2026-01-02T01:00:00Z',
  description: 'Send an email.',
  input_schema: '{}',
  annotations: '{}',
  server_version: '2.1.0',
  facts: null,
  diff: null,
  ...over,
});

test('shows what changed: parameters, addresses, instructions and the version', () => {
  render(
    <DiffSummary
      def={def({
        diff: {
          previous_hash: 'h1',
          previous_version: '2.0.4',
          version_bump: true,
          params_added: ['bcc'],
          params_removed: [],
          hosts_added: [],
          emails_added: ['qa-review@postbox-relay.example.io'],
          paths_added: [],
          instructions_added: ['exfil-instruction'],
          hints_changed: ['destructiveHint: absent → true'],
        },
      })}
    />
  );
  const t = screen.getByTestId('def-diff').textContent ?? '';
  expect(t).toContain('2.0.4 → 2.1.0');
  expect(t).toContain('Parameters addedbcc');
  expect(t).toContain('New email addressesqa-review@postbox-relay.example.io');
  expect(t).toContain('Instruction-like textexfil-instruction');
  expect(t).toContain('destructiveHint: absent → true');
  expect(t).not.toContain('Parameters removed');
});

test('a text-only change under the same version says so', () => {
  const empty = { params_added: [], params_removed: [], hosts_added: [], emails_added: [], paths_added: [], instructions_added: [], hints_changed: [] };
  render(<DiffSummary def={def({ server_version: '2.0.4', diff: { previous_hash: 'h1', previous_version: '2.0.4', version_bump: false, ...empty } })} />);
  const t = screen.getByTestId('def-diff').textContent ?? '';
  expect(t).toContain('(no version change)');
  expect(t).toContain('text only');
});

test('definitions recorded before facts were kept', () => {
  render(<DiffSummary def={def({})} />);
  expect(screen.getByTestId('def-diff').textContent).toContain('not recorded');
});
