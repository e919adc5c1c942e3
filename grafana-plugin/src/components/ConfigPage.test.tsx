import { fireEvent, render, screen, waitFor } from '@testing-library/react';
import { BackendSrv, BackendSrvRequest, setBackendSrv } from '@grafana/runtime';
import { of } from 'rxjs';
import { ConfigPage, parseTenantAccess } from './ConfigPage';

// Saving the settings keeps what the page has no field for (provisioned
// timeoutSeconds) and writes tenantAccess from its JSON; invalid JSON is
// refused before anything is saved.
function setup(jsonData: Record<string, unknown>) {
  const posts: BackendSrvRequest[] = [];
  setBackendSrv({
    fetch: (req: BackendSrvRequest) => {
      if (req.method === 'POST') {
        posts.push(req);
        return of({ data: {}, status: 200 });
      }
      return of({ data: { status: 'OK', message: 'ok' }, status: 200 });
    },
  } as unknown as BackendSrv);
  const plugin = { meta: { jsonData, secureJsonFields: { password: true, analyzerToken: true } } };
  render(<ConfigPage plugin={plugin as never} query={{} as never} />);
  return posts;
}

test('tenant access is saved and other settings are kept', async () => {
  const access = { users: { dana: ['acme'] } };
  const posts = setup({ clickhouseAddress: 'ch:9000', timeoutSeconds: 12, tenantAccess: access });
  expect((screen.getByTestId('cfg-tenant-access') as HTMLTextAreaElement).value).toContain('"dana"');
  fireEvent.change(screen.getByTestId('cfg-tenant-access'), { target: { value: '{"roles": {"Admin": ["*"]}}' } });
  fireEvent.click(screen.getByTestId('cfg-save'));
  await waitFor(() => expect(posts).toHaveLength(1));
  const jd = (posts[0].data as { jsonData: Record<string, unknown> }).jsonData;
  expect(jd.timeoutSeconds).toBe(12);
  expect(jd.clickhouseAddress).toBe('ch:9000');
  expect(jd.tenantAccess).toEqual({ roles: { Admin: ['*'] } });
});

test('invalid tenant access JSON is not saved', async () => {
  const posts = setup({});
  fireEvent.change(screen.getByTestId('cfg-tenant-access'), { target: { value: '{"users": ' } });
  fireEvent.click(screen.getByTestId('cfg-save'));
  await waitFor(() => expect(screen.getByTestId('cfg-result').textContent).toContain('not valid JSON'));
  expect(posts).toHaveLength(0);
  expect(parseTenantAccess('  ')).toBeUndefined();
  expect(() => parseTenantAccess('["a"]')).toThrow('JSON object');
});
