// Bundles browser/host.tsx (the Grafana-like test host) with real
// react, react-dom, rxjs, @emotion/css and @grafana/* from node_modules.
const path = require('path');
const webpack = require('webpack');

module.exports = {
  mode: 'production',
  target: 'web',
  entry: path.resolve(__dirname, 'host.tsx'),
  output: { path: path.resolve(__dirname, 'host-dist'), filename: 'host.js', clean: true },
  resolve: {
    extensions: ['.ts', '.tsx', '.js', '.mjs'],
    fallback: { fs: false, path: false, os: false, crypto: false },
    // setPluginPage is internal to @grafana/runtime (Grafana core sets it);
    // the same module file the package's index uses, so it is one instance.
    alias: { 'grafana-runtime-plugin-page$': path.resolve(__dirname, '../node_modules/@grafana/runtime/dist/esm/components/PluginPage.mjs') },
  },
  module: {
    rules: [
      {
        test: /\.tsx?$/,
        exclude: /node_modules/,
        use: { loader: 'swc-loader', options: { jsc: { parser: { syntax: 'typescript', tsx: true }, target: 'es2021' } } },
      },
      { test: /\.m?js$/, resolve: { fullySpecified: false } },
      { test: /\.css$/, type: 'asset/source' },
      { test: /\.(svg|png|woff2?|ttf|eot)$/, type: 'asset/resource' },
    ],
  },
  plugins: [new webpack.DefinePlugin({ 'process.env.NODE_ENV': JSON.stringify('production') })],
  optimization: { minimize: false },
  performance: { hints: false },
  cache: { type: 'filesystem', cacheDirectory: path.resolve(__dirname, '../node_modules/.cache/host-webpack') },
};
