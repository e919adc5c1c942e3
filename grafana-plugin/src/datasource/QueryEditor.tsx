
import { QueryEditorProps, SelectableValue } from '@grafana/data';
import { InlineField, InlineFieldRow, Input, Select } from '@grafana/ui';
import { DataSource } from './datasource';
import { McpQuery, QUERY_TYPES } from './types';

type Props = QueryEditorProps<DataSource, McpQuery>;

export function QueryEditor({ query, onChange, onRunQuery }: Props) {
  const text = (k: 'agent' | 'server' | 'tool' | 'status' | 'severity' | 'tenant' | 'rule' | 'definition_hash' | 'fingerprint' | 'session' | 'incident') => (
    <InlineField label={k}>
      <Input
        width={18}
        value={query[k] ?? ''}
        placeholder="all or $variable"
        onChange={(e) => onChange({ ...query, [k]: e.currentTarget.value })}
        onBlur={onRunQuery}
      />
    </InlineField>
  );
  return (
    <>
      <InlineFieldRow>
        <InlineField label="Query type">
          <Select
            width={30}
            options={QUERY_TYPES}
            value={query.queryType}
            onChange={(v: SelectableValue<string>) => {
              onChange({ ...query, queryType: v.value });
              onRunQuery();
            }}
          />
        </InlineField>
        <InlineField label="Limit">
          <Input
            width={10}
            type="number"
            value={query.limit ?? ''}
            onChange={(e) => onChange({ ...query, limit: Number(e.currentTarget.value) || undefined })}
            onBlur={onRunQuery}
          />
        </InlineField>
      </InlineFieldRow>
      <InlineFieldRow>
        {text('agent')}
        {text('server')}
        {text('tool')}
        {text('tenant')}
      </InlineFieldRow>
      {query.queryType === 'incidents' && (
        <InlineFieldRow>
          {text('status')}
          {text('severity')}
        </InlineFieldRow>
      )}
      {query.queryType === 'new_incidents' && <InlineFieldRow>{text('severity')}</InlineFieldRow>}
      {query.queryType === 'calls' && <InlineFieldRow>{text('session')}</InlineFieldRow>}
      {(query.queryType === 'rules' || query.queryType === 'rule_hits' || query.queryType === 'findings') && <InlineFieldRow>{text('rule')}</InlineFieldRow>}
      {query.queryType === 'blast_radius' && (
        // server and tool above name a tool subject; or one of these.
        <InlineFieldRow>
          {text('definition_hash')}
          {text('fingerprint')}
          {text('session')}
          {text('incident')}
        </InlineFieldRow>
      )}
    </>
  );
}
