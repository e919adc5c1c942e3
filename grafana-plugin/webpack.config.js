// Production build of the app plugin (dist/module.js) and its nested data
// source (dist/datasource/module.js) as AMD modules, like Grafana's
// create-plugin: Grafana provides react, @grafana/* etc. at runtime.
const path = require('path');
const fs = require('fs');
const CopyWebpackPlugin = require('copy-webpack-plugin');
const pkg = require('./package.json');

const today = new Date().toISOString().slice(0, 10);
const stamp = (content) => content.toString().replace('%VERSION%', pkg.version).replace('%TODAY%', today);

module.exports = (env, argv) => ({
  mode: argv.mode || 'production',
  target: 'web',
  context: path.resolve(__dirname, 'src'),
  entry: { module: './module.tsx', 'datasource/module': './datasource/module.ts' },
  devtool: 'source-map',
  output: {
    path: path.resolve(__dirname, 'dist'),
    filename: '[name].js',
    library: { type: 'amd' },
    publicPath: 'public/plugins/mcpwatch-mcpwatch-app/',
    uniqueName: 'mcpwatch-mcpwatch-app',
    clean: { keep: /gpx_|MANIFEST|\.zip$/ },
  },
  externals: [
    'react',
    'react-dom',
    'react/jsx-runtime',
    // As create-plugin with React Router 6: Grafana provides react-router;
    // react-router-dom and @grafana/scenes are bundled into the plugin.
    'react-router',
    'rxjs',
    'rxjs/operators',
    '@emotion/css',
    '@emotion/react',
    'lodash',
    'moment',
    /^@grafana\/(ui|runtime|data|schema|e2e-selectors|i18n)$/,
  ],
  resolve: { extensions: ['.ts', '.tsx', '.js'] },
  module: {
    rules: [
      {
        test: /\.[tj]sx?$/,
        exclude: /node_modules/,
        use: {
          loader: 'swc-loader',
          options: { jsc: { parser: { syntax: 'typescript', tsx: true }, transform: { react: { runtime: 'automatic' } }, target: 'es2021' } },
        },
      },
    ],
  },
  plugins: [
    new CopyWebpackPlugin({
      patterns: [
        { from: 'plugin.json', to: '.', transform: stamp },
        { from: 'datasource/plugin.json', to: 'datasource/', transform: stamp },
        { from: 'img', to: 'img' },
        { from: 'datasource/img', to: 'datasource/img' },
        { from: '../README.md', to: '.' },
        { from: '../../dashboards/*.json', to: 'dashboards/[name][ext]', noErrorOnMissing: true },
      ],
    }),
  ],
  performance: { hints: false },
  optimization: { minimize: (argv.mode || 'production') === 'production' },
});
void fs;
