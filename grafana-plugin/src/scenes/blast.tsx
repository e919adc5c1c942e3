// Blast radius from native panels: the lookup (a tool and optionally one of
// its definitions, a redacted secret's fingerprint, a session or an
// incident) is a SceneObject synced to the URL (?server=&tool=,
// ?fingerprint=, ?session=, ?incident=); its answer is one blast_radius
// query whose frames feed stats, a time series and tables with drill-downs
// to the agent and the session. The requests table lists the newest calls;
// its title says how many of how many (the calls frame's meta.custom.more_calls).
import { useState } from 'react';
import { Button, Input, RadioButtonGroup } from '@grafana/ui';
import {
  EmbeddedScene,
  PanelBuilders,
  SceneComponentProps,
  SceneFlexItem,
  SceneFlexLayout,
  SceneObjectBase,
  SceneObjectState,
  SceneObjectUrlSyncConfig,
  SceneObjectUrlValues,
  SceneQueryRunner,
  SceneReactObject,
  VizPanel,
} from '@grafana/scenes';
import { mcpQuery } from './common';
import { appLink, transformed } from './drilldown';
import { callsTitle, pickFrames } from './frames';
import { BLAST_FIELDS, BLAST_KINDS, BlastField, BlastKind, blastKindOf, blastQuery, blastSubject } from './blastSubject';

const PLACEHOLDER: Record<BlastField, string> = {
  server: 'MCP server',
  tool: 'tool',
  definition_hash: 'definition hash (optional)',
  fingerprint: 'fingerprint, e.g. 9f8e7d6c',
  session: 'session key',
  incident: 'incident id',
};

interface BlastLookupState extends SceneObjectState {
  subject: Partial<Record<BlastField, string>>;
}

/** The subject of the blast radius, in the URL; changing it reruns the query. */
export class BlastLookup extends SceneObjectBase<BlastLookupState> {
  static Component = BlastLookupRenderer;
  protected _urlSync = new SceneObjectUrlSyncConfig(this, { keys: [...BLAST_FIELDS] });

  getUrlState(): SceneObjectUrlValues {
    const out: SceneObjectUrlValues = {};
    for (const f of BLAST_FIELDS) {
      out[f] = this.state.subject[f] || null;
    }
    return out;
  }

  updateFromUrl(values: SceneObjectUrlValues) {
    const subject: Partial<Record<BlastField, string>> = {};
    for (const f of BLAST_FIELDS) {
      const v = values[f];
      if (typeof v === 'string' && v) {
        subject[f] = v;
      }
    }
    if (JSON.stringify(subject) !== JSON.stringify(this.state.subject)) {
      this.setState({ subject });
    }
  }
}

function BlastLookupRenderer({ model }: SceneComponentProps<BlastLookup>) {
  const { subject } = model.useState();
  const [kind, setKind] = useState<BlastKind>(blastKindOf(subject));
  const [draft, setDraft] = useState<Partial<Record<BlastField, string>>>(subject);
  const fields = BLAST_KINDS.find((k) => k.value === kind)!.fields;
  const run = () => model.setState({ subject: blastSubject(kind, draft) });
  return (
    <div style={{ display: 'flex', gap: 8, alignItems: 'center', flexWrap: 'wrap' }} data-testid="blast-page">
      <RadioButtonGroup options={BLAST_KINDS.map((k) => ({ label: k.label, value: k.value }))} value={kind} onChange={(v) => setKind(v as BlastKind)} size="sm" />
      {fields.map((f) => (
        <Input
          key={f}
          width={f === 'definition_hash' ? 26 : 22}
          placeholder={PLACEHOLDER[f]}
          value={draft[f] ?? ''}
          onChange={(e) => setDraft({ ...draft, [f]: e.currentTarget.value })}
          onKeyDown={(e) => e.key === 'Enter' && run()}
          data-testid={`blast-input-${f}`}
        />
      ))}
      <Button size="sm" onClick={run} data-testid="blast-run">
        Show blast radius
      </Button>
    </div>
  );
}

const frame = (name: string) => transformed((f) => pickFrames(f, name));

function count(title: string, from: string, field: string, calc: string): VizPanel {
  return PanelBuilders.stat().setTitle(title).setData(frame(from)).setOption('reduceOptions', { values: false, calcs: [calc], fields: field }).setNoValue('0').build();
}

const sessionLink = appLink('Session', 'sessions/${__data.fields.session_key:percentencode}');
const agentLink = appLink('Agent', 'agents/${__data.fields.agent_id:percentencode}');

function blastPanels(calls: VizPanel): SceneFlexItem[] {
  return [
    new SceneFlexItem({
      height: 100,
      body: new SceneFlexLayout({
        children: [
          new SceneFlexItem({ body: count('Agents touched', 'blast_agents', 'agent_id', 'count') }),
          new SceneFlexItem({ body: count('Sessions touched', 'blast_sessions', 'session_key', 'count') }),
          new SceneFlexItem({ body: count('Requests', 'blast_agents', 'calls', 'sum') }),
        ],
      }),
    }),
    new SceneFlexItem({
      height: 240,
      body: PanelBuilders.timeseries().setTitle('Requests over time').setData(frame('blast_series')).setUnit('short').build(),
    }),
    new SceneFlexItem({
      height: 260,
      body: new SceneFlexLayout({
        children: [
          new SceneFlexItem({
            body: PanelBuilders.table()
              .setTitle('Agents')
              .setData(frame('blast_agents'))
              .setOverrides((b) => b.matchFieldsWithName('agent_id').overrideDisplayName('Agent').overrideLinks([agentLink]))
              .build(),
          }),
          new SceneFlexItem({
            body: PanelBuilders.table()
              .setTitle('Sessions')
              .setData(frame('blast_sessions'))
              .setOverrides((b) => {
                b.matchFieldsWithName('session_key').overrideDisplayName('Session').overrideLinks([sessionLink]);
                b.matchFieldsWithName('agent_id').overrideDisplayName('Agent').overrideLinks([agentLink]);
              })
              .build(),
          }),
        ],
      }),
    }),
    new SceneFlexItem({
      height: 420,
      body: calls,
    }),
  ];
}

function callsTable(): VizPanel {
  return PanelBuilders.table()
    .setTitle('Requests (newest first)')
    .setData(frame('blast_calls'))
    .setOverrides((b) => {
      b.matchFieldsWithName('session_key').overrideDisplayName('Session').overrideLinks([sessionLink]);
      b.matchFieldsWithName('agent_id').overrideDisplayName('Agent').overrideLinks([agentLink]);
    })
    .build();
}

export function blastScene(): EmbeddedScene {
  const lookup = new BlastLookup({ subject: {} });
  const runner: SceneQueryRunner = mcpQuery([blastQuery({})]);
  const calls = callsTable();
  const panels = blastPanels(calls);
  const hint = new SceneFlexItem({
    body: new SceneReactObject({ reactNode: <p data-testid="blast-hint">Pick a tool, a redacted secret&apos;s fingerprint, a session or an incident.</p> }),
  });
  const show = (subject: BlastLookupState['subject']) => {
    const on = Object.keys(subject).length > 0;
    hint.setState({ isHidden: on });
    for (const p of panels) {
      p.setState({ isHidden: !on });
    }
    if (on) {
      runner.setState({ queries: mcpQuery([blastQuery(subject)]).state.queries });
      runner.runQueries();
    }
  };
  return new EmbeddedScene({
    $data: runner,
    $behaviors: [
      () => {
        show(lookup.state.subject);
        const sub = lookup.subscribeToState((n, p) => n.subject !== p.subject && show(n.subject));
        // "Requests (newest N of M)": the answer lists the newest calls only.
        const titled = runner.subscribeToState((n) => n.data?.series && calls.setState({ title: callsTitle(n.data.series) }));
        return () => {
          sub.unsubscribe();
          titled.unsubscribe();
        };
      },
    ],
    controls: [lookup],
    body: new SceneFlexLayout({ direction: 'column', children: [hint, ...panels] }),
  });
}
