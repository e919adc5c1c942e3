import React from 'react';
import { DataSourcePlugin } from '@grafana/data';
import { DataSource } from './datasource';
import { QueryEditor } from './QueryEditor';
import { McpQuery } from './types';

function ConfigEditor() {
  return React.createElement(
    'p',
    null,
    'This data source reads through the mcpwatch app: configure ClickHouse and the analyzer API on the mcpwatch app configuration page.'
  );
}

export const plugin = new DataSourcePlugin<DataSource, McpQuery>(DataSource).setQueryEditor(QueryEditor).setConfigEditor(ConfigEditor);
