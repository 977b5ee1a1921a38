/**
 * graphql-js as the gateway's libraries load it. @apollo/gateway, @apollo/federation-internals and
 * graphql-ws `require('graphql')`, its CommonJS build; Node's ESM `import 'graphql'` gets the same
 * build (the package has no "exports"). Vite, and so vitest, would pick its "module" build instead:
 * a second copy whose instanceof checks reject the gateway's schemas and errors. Values from graphql
 * come from here; types may still be imported from 'graphql'.
 */
export { GraphQLError, getOperationAST, getVariableValues, parse, print, validate } from 'graphql/index.js';
