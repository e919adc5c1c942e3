import { PanelPlugin } from "@grafana/data";
export const panelPlugins: Record<string, PanelPlugin> = {};
