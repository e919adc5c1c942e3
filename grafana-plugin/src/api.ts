import { getBackendSrv } from '@grafana/runtime';
import { lastValueFrom } from 'rxjs';
import { RESOURCES } from './constants';

export interface TimeScope {
  from: number;
  to: number;
}

export type Params = Record<string, string | number | undefined>;

function clean(params: Params): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== '') {
      out[k] = v;
    }
  }
  return out;
}

/** GET a backend resource; errors carry the backend's message. */
export async function getResource<T>(path: string, params: Params = {}): Promise<T> {
  const res = await lastValueFrom(
    getBackendSrv().fetch<T>({ url: `${RESOURCES}/${path}`, method: 'GET', params: clean(params), showErrorAlert: false })
  );
  return res.data;
}

/** POST to a backend resource (incident actions). */
export async function postResource<T>(path: string, body: unknown = {}): Promise<T> {
  const res = await lastValueFrom(
    getBackendSrv().fetch<T>({ url: `${RESOURCES}/${path}`, method: 'POST', data: body, showErrorAlert: false })
  );
  return res.data;
}

/** Extracts a readable message from a fetch error. */
export function errorMessage(e: unknown): string {
  if (e && typeof e === 'object') {
    const o = e as { data?: { error?: string; message?: string }; message?: string; status?: number; statusText?: string };
    if (o.data?.error) {
      return o.data.error;
    }
    if (o.data?.message) {
      return o.data.message;
    }
    if (o.message) {
      return o.message;
    }
    if (o.status) {
      return `HTTP ${o.status} ${o.statusText ?? ''}`.trim();
    }
  }
  return String(e);
}
