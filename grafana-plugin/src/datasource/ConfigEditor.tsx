import React, { useState } from 'react';
import { DataSourcePluginOptionsEditorProps } from '@grafana/data';
import { Field, FieldSet, Input, SecretInput, TextArea } from '@grafana/ui';
import { DsJsonData } from './types';

type Props = DataSourcePluginOptionsEditorProps<DsJsonData, { password?: string }>;

/**
 * The data source's own ClickHouse settings: Grafana hands a data source
 * query (alert rules included) to the backend with these only, never the
 * app's. tenantAccess works as on the app's configuration page.
 */
export function ConfigEditor({ options, onOptionsChange }: Props) {
  const jd = options.jsonData;
  const [access, setAccess] = useState(jd.tenantAccess ? JSON.stringify(jd.tenantAccess, null, 2) : '');
  const [accessError, setAccessError] = useState('');
  const set = (k: keyof DsJsonData) => (e: React.FormEvent<HTMLInputElement>) =>
    onOptionsChange({ ...options, jsonData: { ...jd, [k]: e.currentTarget.value } });
  return (
    <>
      <FieldSet label="ClickHouse">
        <Field label="Address" description="host:port of the native protocol (9000)">
          <Input value={jd.clickhouseAddress ?? ''} placeholder="localhost:9000" onChange={set('clickhouseAddress')} width={40} />
        </Field>
        <Field label="Database">
          <Input value={jd.database ?? ''} placeholder="mcpwatch" onChange={set('database')} width={40} />
        </Field>
        <Field label="User">
          <Input value={jd.username ?? ''} placeholder="default" onChange={set('username')} width={40} />
        </Field>
        <Field label="Password">
          <SecretInput
            isConfigured={Boolean(options.secureJsonFields?.password)}
            value={options.secureJsonData?.password ?? ''}
            onChange={(e) => onOptionsChange({ ...options, secureJsonData: { password: e.currentTarget.value } })}
            onReset={() =>
              onOptionsChange({ ...options, secureJsonFields: { ...options.secureJsonFields, password: false }, secureJsonData: { password: '' } })
            }
            width={40}
          />
        </Field>
      </FieldSet>
      <FieldSet label="Tenant access">
        <Field
          label="Grafana orgs, roles and users → mcpwatch tenants"
          description='Same JSON as on the mcpwatch app configuration page. Alert rules run with no user: they read the "default" and the org entries. Empty: every tenant.'
          invalid={accessError !== ''}
          error={accessError}
        >
          <TextArea
            rows={5}
            value={access}
            onChange={(e) => {
              const text = e.currentTarget.value;
              setAccess(text);
              try {
                const v = text.trim() === '' ? undefined : JSON.parse(text);
                setAccessError('');
                onOptionsChange({ ...options, jsonData: { ...jd, tenantAccess: v } });
              } catch {
                setAccessError('not valid JSON');
              }
            }}
          />
        </Field>
      </FieldSet>
    </>
  );
}
