import { AppPlugin } from '@grafana/data';
import { App } from './components/App';
import { ConfigPage, JsonData } from './components/ConfigPage';

export const plugin = new AppPlugin<JsonData>().setRootPage(App).addConfigPage({
  title: 'Configuration',
  icon: 'cog',
  body: ConfigPage,
  id: 'configuration',
});
