// Grafana core registers the standard field options (display name, unit,
// links...) at startup (public/app/core/components/OptionsUI/registry.tsx,
// not in any npm package); without them applyFieldOverrides ignores a
// panel's field config and overrides. The host registers the ones the
// app's panels set, with @grafana/data's own processors (no editors: the
// host has no panel editor), and its panel plugins use them.
import {
  FieldConfigPropertyItem,
  FieldConfigProperty,
  dataLinksOverrideProcessor,
  displayNameOverrideProcessor,
  identityOverrideProcessor,
  numberOverrideProcessor,
  standardFieldConfigEditorRegistry,
  stringOverrideProcessor,
  unitOverrideProcessor,
  valueMappingsOverrideProcessor,
} from '@grafana/data';
import { panelPlugins } from './panels';

const noEditor = () => null;

function option(id: string, process: FieldConfigPropertyItem['process']): FieldConfigPropertyItem {
  return { id, path: id, name: id, editor: noEditor, override: noEditor, process, shouldApply: () => true };
}

standardFieldConfigEditorRegistry.setInit(() => [
  option(FieldConfigProperty.DisplayName, displayNameOverrideProcessor),
  option(FieldConfigProperty.Unit, unitOverrideProcessor),
  option(FieldConfigProperty.Decimals, numberOverrideProcessor),
  option(FieldConfigProperty.Min, numberOverrideProcessor),
  option(FieldConfigProperty.Max, numberOverrideProcessor),
  option(FieldConfigProperty.NoValue, stringOverrideProcessor),
  option(FieldConfigProperty.Links, dataLinksOverrideProcessor),
  option(FieldConfigProperty.Mappings, valueMappingsOverrideProcessor),
  option(FieldConfigProperty.Color, identityOverrideProcessor),
]);

for (const p of Object.values(panelPlugins)) {
  p.useFieldConfig();
}
