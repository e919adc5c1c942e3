import { DataSourcePlugin } from '@grafana/data';
import { ConfigEditor } from './ConfigEditor';
import { DataSource } from './datasource';
import { QueryEditor } from './QueryEditor';
import { DsJsonData, McpQuery } from './types';

export const plugin = new DataSourcePlugin<DataSource, McpQuery, DsJsonData>(DataSource).setQueryEditor(QueryEditor).setConfigEditor(ConfigEditor);
