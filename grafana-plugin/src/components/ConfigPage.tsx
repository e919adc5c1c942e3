import React, { useState } from 'react';
import { AppPluginMeta, PluginConfigPageProps, PluginMeta } from '@grafana/data';
import { getBackendSrv } from '@grafana/runtime';
import { Alert, Button, Field, FieldSet, Input, SecretInput, TextArea } from '@grafana/ui';
import { lastValueFrom } from 'rxjs';
import { APP_ID } from '../constants';
import { errorMessage } from '../api';

/** Grafana orgs, org roles and logins → mcpwatch tenants (pkg/plugin TenantAccess). */
export interface TenantAccess {
  default?: string[];
  orgs?: Record<string, string[]>;
  roles?: Record<string, string[]>;
  users?: Record<string, string[]>;
}

export interface JsonData {
  clickhouseAddress?: string;
  database?: string;
  username?: string;
  analyzerUrl?: string;
  timeoutSeconds?: number;
  tenantAccess?: TenantAccess;
}

/** parseTenantAccess reads the settings' JSON text: empty = no mapping (every user reads every tenant). */
export function parseTenantAccess(text: string): TenantAccess | undefined {
  if (text.trim() === '') {
    return undefined;
  }
  const v = JSON.parse(text);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new Error('tenant access must be a JSON object');
  }
  return v as TenantAccess;
}

type Props = PluginConfigPageProps<AppPluginMeta<JsonData>>;

export function ConfigPage({ plugin }: Props) {
  const meta = plugin.meta as PluginMeta<JsonData>;
  const jd = meta.jsonData ?? {};
  const [form, setForm] = useState<JsonData>({
    clickhouseAddress: jd.clickhouseAddress ?? 'localhost:9000',
    database: jd.database ?? 'mcpwatch',
    username: jd.username ?? 'default',
    analyzerUrl: jd.analyzerUrl ?? '',
  });
  const [access, setAccess] = useState(jd.tenantAccess ? JSON.stringify(jd.tenantAccess, null, 2) : '');
  const sec = meta.secureJsonFields ?? {};
  const [password, setPassword] = useState('');
  const [token, setToken] = useState('');
  const [pwSet, setPwSet] = useState(Boolean(sec.password));
  const [tokSet, setTokSet] = useState(Boolean(sec.analyzerToken));
  const [result, setResult] = useState<{ ok: boolean; message: string }>();
  const set = (k: keyof JsonData) => (e: React.FormEvent<HTMLInputElement>) => setForm({ ...form, [k]: e.currentTarget.value });

  const save = async () => {
    setResult(undefined);
    let tenantAccess: TenantAccess | undefined;
    try {
      tenantAccess = parseTenantAccess(access);
    } catch (e) {
      setResult({ ok: false, message: 'Tenant access is not valid JSON: ' + errorMessage(e) });
      return;
    }
    // Keep the settings this page has no field for (e.g. provisioned ones).
    const jsonData: JsonData = { ...jd, ...form, tenantAccess };
    const secureJsonData: Record<string, string> = {};
    if (!pwSet || password) {
      secureJsonData.password = password;
    }
    if (!tokSet || token) {
      secureJsonData.analyzerToken = token;
    }
    try {
      await lastValueFrom(
        getBackendSrv().fetch({
          url: `/api/plugins/${APP_ID}/settings`,
          method: 'POST',
          data: { enabled: true, pinned: true, jsonData, secureJsonData },
          showErrorAlert: false,
        })
      );
      const health = await lastValueFrom(
        getBackendSrv().fetch<{ status: string; message: string }>({ url: `/api/plugins/${APP_ID}/health`, method: 'GET', showErrorAlert: false })
      ).then(
        (r) => r.data,
        (e) => (e?.data?.message ? e.data : { status: 'ERROR', message: errorMessage(e) })
      );
      setResult({ ok: health.status === 'OK', message: health.message });
      if (password) {
        setPwSet(true);
      }
      if (token) {
        setTokSet(true);
      }
    } catch (e) {
      setResult({ ok: false, message: errorMessage(e) });
    }
  };

  return (
    <div data-testid="config-page">
      <FieldSet label="ClickHouse">
        <Field label="Address" description="host:port of the native protocol (9000)">
          <Input value={form.clickhouseAddress} onChange={set('clickhouseAddress')} width={40} data-testid="cfg-address" />
        </Field>
        <Field label="Database">
          <Input value={form.database} onChange={set('database')} width={40} data-testid="cfg-database" />
        </Field>
        <Field label="User">
          <Input value={form.username} onChange={set('username')} width={40} />
        </Field>
        <Field label="Password">
          <SecretInput
            isConfigured={pwSet}
            value={password}
            onChange={(e) => setPassword(e.currentTarget.value)}
            onReset={() => {
              setPwSet(false);
              setPassword('');
            }}
            width={40}
          />
        </Field>
      </FieldSet>
      <FieldSet label="Analyzer API (incident actions)">
        <Field label="URL" description="e.g. http://analyzer:8080; empty disables acknowledge/resolve/approve">
          <Input value={form.analyzerUrl} onChange={set('analyzerUrl')} width={40} />
        </Field>
        <Field label="Token" description="Bearer token with the responder role">
          <SecretInput
            isConfigured={tokSet}
            value={token}
            onChange={(e) => setToken(e.currentTarget.value)}
            onReset={() => {
              setTokSet(false);
              setToken('');
            }}
            width={40}
          />
        </Field>
      </FieldSet>
      <FieldSet label="Tenant access">
        <Field
          label="Grafana users → mcpwatch tenants"
          description={
            'JSON: {"default": [...], "orgs": {"<org id>": [...]}, "roles": {"Viewer|Editor|Admin": [...]}, "users": {"<login>": [...]}}; ' +
            'a user reads the union, "*" is every tenant. Grafana does not tell plugins a user\'s teams. Empty: every user reads every tenant.'
          }
        >
          <TextArea value={access} onChange={(e) => setAccess(e.currentTarget.value)} rows={6} data-testid="cfg-tenant-access" />
        </Field>
      </FieldSet>
      <Button onClick={save} data-testid="cfg-save">
        Save and test
      </Button>
      {result && (
        <Alert title={result.ok ? 'Connected' : 'Health check failed'} severity={result.ok ? 'success' : 'error'} data-testid="cfg-result">
          {result.message}
        </Alert>
      )}
    </div>
  );
}
