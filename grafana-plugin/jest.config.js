// Jest for the frontend: jsdom, SWC transforms (including ESM-only
// dependencies and .mjs files), and the browser APIs React 19 and
// @grafana/ui expect but jsdom lacks (jest.setup.js).
module.exports = {
  testEnvironment: 'jsdom',
  roots: ['<rootDir>/src'],
  setupFiles: ['<rootDir>/jest.setup.js'],
  transform: {
    '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript', tsx: true }, transform: { react: { runtime: 'automatic' } } } }],
    '^.+\\.mjs$': ['@swc/jest'],
  },
  transformIgnorePatterns: [
    'node_modules/(?!(ol|d3|d3-.*|internmap|delaunator|robust-predicates|marked|uuid|@grafana/schema|rxjs|ua-parser-js|@wojtekmaj|react-calendar|get-user-locale|memoize|mimic-function|nanoid|@kusto|monaco-promql|react-colorful|uplot|@msagl|@react-hookz|@ver0)/)',
  ],
  moduleNameMapper: { '\\.(css|scss|svg)$': '<rootDir>/jest.stub.js' },
  forceExit: true,
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
};
