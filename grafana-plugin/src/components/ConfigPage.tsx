import React, { useState } from 'react';
import { AppPluginMeta, PluginConfigPageProps, PluginMeta } from '@grafana/data';
import { getBackendSrv } from '@grafana/runtime';
import { Alert, Button, Field, FieldSet, Input, SecretInput } from '@grafana/ui';
import { lastValueFrom } from 'rxjs';
import { APP_ID } from '../constants';
import { errorMessage } from '../api';

export interface JsonData {
  clickhouseAddress?: string;
  database?: string;
  username?: string;
  analyzerUrl?: string;
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
  const sec = meta.secureJsonFields ?? {};
  const [password, setPassword] = useState('');
  const [token, setToken] = useState('');
  const [pwSet, setPwSet] = useState(Boolean(sec.password));
  const [tokSet, setTokSet] = useState(Boolean(sec.analyzerToken));
  const [result, setResult] = useState<{ ok: boolean; message: string }>();
  const set = (k: keyof JsonData) => (e: React.FormEvent<HTMLInputElement>) => setForm({ ...form, [k]: e.currentTarget.value });

  const save = async () => {
    setResult(undefined);
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
          data: { enabled: true, pinned: true, jsonData: form, secureJsonData },
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
