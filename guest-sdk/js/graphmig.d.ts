// Type declarations for the graphmig JavaScript guest SDK (graphmig.js), for editors.
//
// A migration's `migration.js` imports from "graphmig"; point that name at this SDK so
// an editor finds these types, e.g. in a jsconfig.json / tsconfig.json beside the
// migrations:
//
//   { "compilerOptions": { "checkJs": true, "module": "es2022", "target": "es2022",
//                          "moduleResolution": "bundler",
//                          "paths": { "graphmig": ["<path to>/guest-sdk/js/graphmig"] } } }
//
// (map to the path without `.js`, so that TypeScript reads this file, not the JS)
//
// and type the steps with JSDoc:
//
//   /** @param {import("graphmig").Context} ctx */
//   export function up(ctx) { ... }

/** A value sent to the database (a query parameter, a batch row field, a default). */
export type Param =
  | null
  | undefined
  | boolean
  | number
  | bigint
  | string
  | Float
  | Uint8Array
  | ArrayBuffer
  | Date
  | readonly Param[]
  | ArrayBufferView
  | ReadonlySet<Param>
  | ReadonlyMap<string, Param>
  | { readonly [name: string]: Param };

/** Named values: query parameters (`$name`) or one batch row. */
export type Params = { readonly [name: string]: Param } | ReadonlyMap<string, Param>;

/**
 * A value read from the database. Integers are numbers when they are safe integers and
 * bigints otherwise; temporal values, durations and points arrive as text.
 */
export type Value =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Value[]
  | Node
  | Relationship
  | { [key: string]: Value };

/** One result row: column name -> value (own keys in alphabetical order). */
export type Row = { [column: string]: Value };

/** A node returned by a query. */
export class Node {
  private constructor();
  /** The database's id of the node. */
  readonly id: number | bigint;
  readonly labels: string[];
  readonly properties: { [name: string]: Value };
}

/** A relationship returned by a query. */
export class Relationship {
  private constructor();
  readonly id: number | bigint;
  /** The id of its start node. */
  readonly start: number | bigint;
  /** The id of its end node. */
  readonly end: number | bigint;
  /** Its type. */
  readonly type: string;
  readonly properties: { [name: string]: Value };
}

/** A number sent as a Cypher FLOAT even when whole; made by `float()`. */
export class Float {
  constructor(value: number);
  readonly value: number;
  valueOf(): number;
}

/** Sends `value` as a Cypher FLOAT even when it is whole (`float(1)` is `1.0`). */
export function float(value: number): Float;

// ---------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------

export type GraphErrorKind = "syntax" | "constraint-violation" | "transient" | "forbidden" | "other";

/**
 * A statement, refactoring or batch write failed. The step's transaction is then doomed:
 * later statements fail too and the host rolls the migration back even if `up` returns.
 */
export class GraphError extends Error {
  constructor(kind: GraphErrorKind, code: string, serverMessage: string);
  readonly name: "GraphError";
  readonly kind: GraphErrorKind;
  /** The server's status code (`Neo.ClientError.Statement.SyntaxError`) or a `graphmig.*` code. */
  readonly code: string;
  /** The server's (or host's) message; `message` is `${code}: ${serverMessage}`. */
  readonly serverMessage: string;
  /** Whether running the migration again may succeed. */
  readonly transient: boolean;
}

/** A schema operation the target cannot do, or a malformed one. */
export class SchemaError extends Error {
  constructor(kind: "unsupported" | "invalid", detail: string);
  readonly name: "SchemaError";
  readonly kind: "unsupported" | "invalid";
  /** The host's text, such as `arcadedb does not support point indexes on nodes`. */
  readonly detail: string;
}

/** A dataset could not be read, or (`invalid`) decoded as UTF-8 text or JSON. */
export class DatasetError extends Error {
  constructor(kind: "not-found" | "forbidden" | "io" | "invalid", path: string, detail: string);
  readonly name: "DatasetError";
  readonly kind: "not-found" | "forbidden" | "io" | "invalid";
  readonly path: string;
  readonly detail: string;
}

// ---------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------

export type Entity = "node" | "relationship";
export type ConstraintKind = "unique" | "key" | "exists" | "property-type";
export type IndexKind = "range" | "text" | "point" | "fulltext" | "vector";

export interface ConstraintFields {
  /** Omit for the stable name the host derives (`person_email_unique`). */
  name?: string | null;
  entity?: Entity;
  /** The label, or the relationship type. */
  label: string;
  properties: string | readonly string[];
  kind: ConstraintKind;
  /** The Cypher type of a `property-type` constraint (`STRING`, `INTEGER`, ...). */
  propertyType?: string | null;
}

/** A constraint (immutable). Build with `unique`, `key`, `exists`, `propertyType`. */
export class Constraint {
  constructor(fields: ConstraintFields);
  readonly name: string | null;
  readonly entity: Entity;
  readonly label: string;
  readonly properties: readonly string[];
  readonly kind: ConstraintKind;
  readonly propertyType: string | null;
  /** The same constraint on relationships of type `label`. */
  onRelationships(): Constraint;
  /** The same constraint with this name. */
  named(name: string): Constraint;
  static unique(label: string, properties: string | readonly string[]): Constraint;
  static key(label: string, properties: string | readonly string[]): Constraint;
  static exists(label: string, property: string): Constraint;
  static propertyType(label: string, property: string, cypherType: string): Constraint;
}

export interface IndexFields {
  name?: string | null;
  entity?: Entity;
  /** The labels or relationship types; several only for full-text. */
  labels: string | readonly string[];
  properties: string | readonly string[];
  kind?: IndexKind;
  vectorDimensions?: number | null;
  /** `cosine` or `euclidean`. */
  vectorSimilarity?: string | null;
}

/** An index (immutable). Build with `rangeIndex`, `textIndex`, `pointIndex`, `fulltextIndex`, `vectorIndex`. */
export class Index {
  constructor(fields: IndexFields);
  readonly name: string | null;
  readonly entity: Entity;
  readonly labels: readonly string[];
  readonly properties: readonly string[];
  readonly kind: IndexKind;
  readonly vectorDimensions: number | null;
  readonly vectorSimilarity: string | null;
  /** The same index on relationships. */
  onRelationships(): Index;
  /** The same index with this name. */
  named(name: string): Index;
  static range(label: string, properties: string | readonly string[]): Index;
  static text(label: string, property: string): Index;
  static point(label: string, property: string): Index;
  static fulltext(labels: string | readonly string[], properties: string | readonly string[]): Index;
  static vector(label: string, property: string, dimensions: number, similarity?: "cosine" | "euclidean"): Index;
}

/** Values of `properties` (together) are unique among nodes labelled `label`. */
export function unique(label: string, properties: string | readonly string[]): Constraint;
/** `properties` exist and are unique together (a node key). */
export function key(label: string, properties: string | readonly string[]): Constraint;
/** `property` exists (`IS NOT NULL`). */
export function exists(label: string, property: string): Constraint;
/** `property` has the Cypher type `cypherType` (`STRING`, `INTEGER`, ...). */
export function propertyType(label: string, property: string, cypherType: string): Constraint;
/** A range index on `properties` of `label`. */
export function rangeIndex(label: string, properties: string | readonly string[]): Index;
/** A text index on `property` of `label`. */
export function textIndex(label: string, property: string): Index;
/** A point index on `property` of `label`. */
export function pointIndex(label: string, property: string): Index;
/** A full-text index over `properties` of nodes with any of `labels`. */
export function fulltextIndex(labels: string | readonly string[], properties: string | readonly string[]): Index;
/** A vector index on `property` of `label`. */
export function vectorIndex(
  label: string,
  property: string,
  dimensions: number,
  similarity?: "cosine" | "euclidean",
): Index;

// ---------------------------------------------------------------------------------
// Batches
// ---------------------------------------------------------------------------------

/** How a batch finds one end of a relationship: the `label` node whose `key` equals the row's `field`. */
export interface Endpoint {
  label: string;
  key: string;
  /** The row field holding the key's value; defaults to `key`. */
  field?: string;
}

/** An endpoint; `field` defaults to `key`. */
export function endpoint(label: string, key: string, field?: string): Required<Endpoint>;

/** A tracked batch begun with `ctx.batch(name)`. Counts are numbers (bigints beyond 2^53). */
export class Batch {
  private constructor();
  /** The batch id, recorded in the ledger and on everything it wrote (`_graphmig_batch`). */
  readonly id: string;
  readonly name: string;
  /** Creates one `label` node per row; returns how many were created. */
  createNodes(label: string, rows: Iterable<Params>): number;
  /** Merges one `label` node per row on the `key` properties; returns how many were created. */
  mergeNodes(label: string, key: string | readonly string[], rows: Iterable<Params>): number;
  /** Creates one `type` relationship per row between the nodes `from` and `to` find; other fields become its properties. */
  createRelationships(type: string, from: Endpoint, to: Endpoint, rows: Iterable<Params>): number;
  /** Deletes exactly what this batch created. */
  delete(): number;
}

// ---------------------------------------------------------------------------------
// Context
// ---------------------------------------------------------------------------------

/** Logs at info; its members log at their level. Arguments are joined like console.log's. */
export interface Log {
  (...args: unknown[]): void;
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

export interface EntityOptions {
  /** Applies to relationships of type `label` instead of nodes labelled `label`. */
  relationship?: boolean;
}

/** What a step receives. While a step runs, console.* also goes to the host's log. */
export class Context {
  private constructor();
  readonly log: Log;

  /** Runs one statement in the step's transaction; returns its rows. */
  run(query: string, params?: Params): Row[];
  /**
   * Runs a statement that returns exactly one row; returns its column `column`, or its
   * only column when `column` is omitted (several columns without `column` is an error).
   */
  scalar<T extends Value = Value>(query: string, params?: Params, column?: string): T;

  /** Creates a constraint unless one of that name exists; returns its name. */
  createConstraint(constraint: Constraint | ConstraintFields): string;
  /** Drops a constraint by name; absence is fine. */
  dropConstraint(name: string): void;
  /** Creates an index unless one of that name exists; returns its name. */
  createIndex(index: Index | IndexFields): string;
  /** Drops an index by name; absence is fine. */
  dropIndex(name: string): void;
  /** The live constraints and indexes (indexes owned by a constraint are left out). */
  schema(): Array<Constraint | Index>;

  /**
   * Runs a backfill: the host pages through the `label` nodes by `key` and runs `write`
   * on each chunk (`$batch`, `$cursor`), each committed with a checkpoint; a later
   * attempt resumes at the last checkpoint, by `name`.
   */
  backfill(name: string, options: BackfillOptions): BackfillReport;
  /** Renames a node label everywhere; returns how many nodes changed. */
  renameLabel(from: string, to: string): number;
  /** Renames a relationship type everywhere; returns how many relationships changed. */
  renameType(from: string, to: string): number;
  /** Renames a property of nodes labelled `label` (or relationships, with `{relationship: true}`). */
  renameProperty(label: string, from: string, to: string, options?: EntityOptions): number;
  /** Sets `name` to `defaultValue` (not null) wherever it is missing. */
  addProperty(label: string, name: string, defaultValue: Param, options?: EntityOptions): number;
  /** Removes property `name`. */
  removeProperty(label: string, name: string, options?: EntityOptions): number;

  /** Begins a tracked batch. */
  batch(name: string): Batch;
  /** Same as `batch(name)`. */
  beginBatch(name: string): Batch;
  /** Deletes exactly what the batch with this id created; returns how many nodes and relationships went. */
  deleteBatch(id: string | Batch): number;

  /** Reads a file of the project's data folder, by relative path with `/` separators. */
  readDataset(path: string): Uint8Array;
  /** Reads a dataset as UTF-8 text. */
  readText(path: string): string;
  /** Reads a dataset as JSON. */
  readJson<T = any>(path: string): T;

  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

// ---------------------------------------------------------------------------------
// The migration module and its component export
// ---------------------------------------------------------------------------------

/** What a `migration.js` exports (or exports as `default`). */
export interface MigrationModule {
  up(ctx: Context): void | Promise<void>;
  down?(ctx: Context): void | Promise<void>;
  description?: string;
  irreversible?: boolean;
}

/** The `graphmig:migration/lifecycle` export, as componentize-js expects it. */
export interface Lifecycle {
  describe(): { description: string; rollback: "reversible" | "irreversible"; hasDown: boolean };
  up(): { tag: "ok"; val: undefined } | { tag: "err"; val: string } | Promise<{ tag: "ok"; val: undefined } | { tag: "err"; val: string }>;
  down(): { tag: "ok"; val: undefined } | { tag: "err"; val: string } | Promise<{ tag: "ok"; val: undefined } | { tag: "err"; val: string }>;
}

/** The lifecycle export for a migration module (used by the generated entry.js). */
export function lifecycleFor(module: MigrationModule | { default: MigrationModule }): Lifecycle;

/** What `ctx.backfill` pages through and writes. */
export interface BackfillOptions {
  /** The label of the nodes to page through. */
  label: string;
  /** The property to page by: unique, of one type, indexed for speed. */
  key: string;
  /** The write, run once per chunk with `$batch` (the keys) and `$cursor`. */
  write: string;
  /** A condition on `n`, the node. */
  filter?: string;
  /** Keys per chunk (default: `[backfill] chunk-size`). */
  chunkSize?: number;
}

/** What a backfill did, this attempt and the earlier ones together. */
export interface BackfillReport {
  rows: number;
  chunks: number;
  resumedAfter: number;
  total: number;
}
