// Stock @apollo/gateway inside @apollo/server 5 (the versions gateway/package.json pins), nothing
// added: the yardstick of `pnpm bench gateway`. Serves SUPERGRAPH_PATH on a free port and prints {"url":…}.
import { readFileSync } from 'node:fs';
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';

const gateway = new ApolloGateway({ supergraphSdl: readFileSync(process.env.SUPERGRAPH_PATH, 'utf8') });
const server = new ApolloServer({ gateway });
const { url } = await startStandaloneServer(server, { listen: { host: '127.0.0.1', port: 0 } });
console.log(JSON.stringify({ url }));
process.on('SIGTERM', () => void server.stop().then(() => process.exit(0)));
