// The four benchmark subgraphs on a free port, in a process of their own: prints {"port":…} once listening.
import { start } from './subgraphs.mjs';

const server = await start(0);
console.log(JSON.stringify({ port: server.address().port }));
