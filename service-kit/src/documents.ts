/**
 * Parsed operations by their text. A gateway or subgraph sees the same few operations from many
 * clients: each is parsed once, and the subscriptions running it hold one document between them
 * rather than one each for as long as they run (documents are never modified). A parse error is
 * thrown as by graphql's `parse`, and nothing is cached for it.
 */
import { parse, type DocumentNode, type Source } from 'graphql';
import { LRUCache } from 'lru-cache';

export function createDocumentCache(max = 500): (source: string | Source) => DocumentNode {
  const documents = new LRUCache<string, DocumentNode>({ max });
  return (source) => {
    const text = typeof source === 'string' ? source : source.body;
    const cached = documents.get(text);
    if (cached) return cached;
    const document = parse(source);
    documents.set(text, document);
    return document;
  };
}
