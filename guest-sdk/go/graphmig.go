// Package graphmig is the Go SDK for graphmig migrations: a migration is a
// package named migration with a variable
//
//	var Migration = graphmig.Migration{Description: "...", Up: up, Down: down}
//
// whose steps receive a *Context, the only door to the graph. Values are plain
// Go values (nil, bool, integers, floats, string, []byte, slices, maps);
// failures are ordinary errors, and a panic fails the migration with its
// message instead of crashing the sandbox.
package graphmig

import (
	"encoding/json"
	"fmt"
	"runtime/debug"
	"strings"

	ctxwit "wit_component/graphmig_migration_context"
	types "wit_component/graphmig_migration_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// Migration describes one migration: its steps and what graphmig should know
// about it before running it.
type Migration struct {
	// Description shown by graphmig; the file name's is used when empty.
	Description string
	// Irreversible marks an up that Down cannot undo (down is then refused
	// unless forced).
	Irreversible bool
	// Up applies the migration. Required.
	Up func(ctx *Context) error
	// Down reverts it. Optional: without it, graphmig down deletes the
	// batches Up wrote.
	Down func(ctx *Context) error
}

// Params are named query parameters ($name in Cypher) or the properties of a
// batch row.
type Params = map[string]any

// Row is one result row: column name to value.
type Row = map[string]any

// Context is what a running step can do; everything goes through the host.
type Context struct{}

// RunStep runs a step with a fresh context, turning a panic into an error
// that carries the panic's message and where it happened.
func RunStep(step func(*Context) error, name string) (err error) {
	if step == nil {
		return fmt.Errorf("this migration has no %s step", name)
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic: %v\n%s", r, panicSite(debug.Stack()))
		}
	}()
	return step(&Context{})
}

// panicSite keeps the frames of a stack that are not the runtime's or this SDK's.
func panicSite(stack []byte) string {
	lines := strings.Split(string(stack), "\n")
	var kept []string
	for i := 1; i+1 < len(lines); i += 2 {
		fn, at := lines[i], strings.TrimSpace(lines[i+1])
		if strings.HasPrefix(fn, "runtime") || strings.HasPrefix(fn, "panic(") ||
			strings.HasPrefix(fn, "graphmig.") || strings.HasPrefix(fn, "wit_component") ||
			strings.HasPrefix(fn, "main.") {
			continue
		}
		kept = append(kept, fn+" at "+at)
		if len(kept) == 4 {
			break
		}
	}
	return strings.Join(kept, "\n")
}

// GraphError is a statement the database (or the host's policy) refused.
type GraphError struct {
	// Kind: syntax, constraint-violation, transient, forbidden or other.
	Kind string
	// Code is the server's status code or a graphmig.* code.
	Code string
	// Message is the server's or host's message.
	Message string
}

func (e *GraphError) Error() string { return e.Code + ": " + e.Message }

// SchemaError is a schema operation the target cannot do or refused.
type SchemaError struct {
	// Kind: unsupported, invalid or graph.
	Kind string
	// Message says what and why.
	Message string
	// Graph is the database error, for kind graph.
	Graph *GraphError
}

func (e *SchemaError) Error() string {
	if e.Graph != nil {
		return e.Graph.Error()
	}
	return e.Kind + ": " + e.Message
}

// DatasetError is a dataset that could not be read.
type DatasetError struct {
	// Kind: not-found, forbidden or io.
	Kind string
	// Message says which file and why.
	Message string
}

func (e *DatasetError) Error() string { return "dataset " + e.Kind + ": " + e.Message }

var errorKinds = []string{"syntax", "constraint-violation", "transient", "forbidden", "other"}

func graphError(e types.GraphError) *GraphError {
	kind := "other"
	if int(e.Kind) < len(errorKinds) {
		kind = errorKinds[e.Kind]
	}
	return &GraphError{Kind: kind, Code: e.Code, Message: e.Message}
}

func schemaError(e types.SchemaError) *SchemaError {
	switch e.Tag() {
	case types.SchemaError_Unsupported:
		return &SchemaError{Kind: "unsupported", Message: e.Unsupported()}
	case types.SchemaError_Invalid:
		return &SchemaError{Kind: "invalid", Message: e.Invalid()}
	default:
		g := graphError(e.Graph())
		return &SchemaError{Kind: "graph", Message: g.Message, Graph: g}
	}
}

func counted(r witTypes.Result[uint64, types.GraphError]) (uint64, error) {
	if r.IsErr() {
		return 0, graphError(r.Err())
	}
	return r.Ok(), nil
}

// Run runs one Cypher statement in the migration's transaction and returns
// its rows.
func (c *Context) Run(query string, params Params) ([]Row, error) {
	wire, err := toParams(params)
	if err != nil {
		return nil, err
	}
	r := ctxwit.RunCypher(query, wire)
	if r.IsErr() {
		return nil, graphError(r.Err())
	}
	rows := make([]Row, 0, len(r.Ok().Rows))
	for _, row := range r.Ok().Rows {
		out := make(Row, len(row))
		for _, col := range row {
			out[col.F0] = fromValue(col.F1)
		}
		rows = append(rows, out)
	}
	return rows, nil
}

// Scalar runs a statement that returns exactly one row and returns its column.
func (c *Context) Scalar(query string, params Params, column string) (any, error) {
	rows, err := c.Run(query, params)
	if err != nil {
		return nil, err
	}
	if len(rows) != 1 {
		return nil, fmt.Errorf("expected one row from %q, got %d", query, len(rows))
	}
	value, ok := rows[0][column]
	if !ok {
		return nil, fmt.Errorf("no column %q in the result of %q", column, query)
	}
	return value, nil
}

// Int runs a statement that returns one row and returns its column as int64.
func (c *Context) Int(query string, params Params, column string) (int64, error) {
	value, err := c.Scalar(query, params, column)
	if err != nil {
		return 0, err
	}
	n, ok := value.(int64)
	if !ok {
		return 0, fmt.Errorf("column %q of %q is %T, not an integer", column, query, value)
	}
	return n, nil
}

// RenameLabel renames a node label everywhere; returns how many nodes changed.
func (c *Context) RenameLabel(from, to string) (uint64, error) {
	return counted(ctxwit.RenameLabel(from, to))
}

// Backfill describes a backfill for Context.Backfill: the host pages through
// the Label nodes by Key (bounded to those present when it begins) and runs
// Write on each chunk ($batch: the chunk's keys, $cursor: the last key of the
// chunk before), each chunk committed on its own with a checkpoint. A later
// attempt resumes at the last checkpoint, by Name.
type Backfill struct {
	Name   string
	Label  string
	Key    string
	Write  string
	Filter string
	// ChunkSize is the number of keys per chunk; 0 takes [backfill] chunk-size.
	ChunkSize uint32
}

// BackfillReport says what a backfill did, this attempt and earlier ones together.
type BackfillReport struct {
	Rows         uint64
	Chunks       uint32
	ResumedAfter uint32
	Total        uint64
}

// Backfill runs a backfill; see the Backfill type.
func (c *Context) Backfill(b Backfill) (BackfillReport, error) {
	r := ctxwit.Backfill(ctxwit.BackfillSpec{
		Name:      b.Name,
		Label:     b.Label,
		Key:       b.Key,
		Filter:    b.Filter,
		Write:     b.Write,
		ChunkSize: b.ChunkSize,
	})
	if r.IsErr() {
		return BackfillReport{}, graphError(r.Err())
	}
	ok := r.Ok()
	return BackfillReport{Rows: ok.Rows, Chunks: ok.Chunks, ResumedAfter: ok.ResumedAfter, Total: ok.Total}, nil
}

// RenameType renames a relationship type; returns how many changed.
func (c *Context) RenameType(from, to string) (uint64, error) {
	return counted(ctxwit.RenameType(from, to))
}

// RenameNodeProperty renames a property of the nodes labelled label.
func (c *Context) RenameNodeProperty(label, from, to string) (uint64, error) {
	return counted(ctxwit.RenameProperty(types.Entity_Node, label, from, to))
}

// RenameRelationshipProperty renames a property of relationships of a type.
func (c *Context) RenameRelationshipProperty(relType, from, to string) (uint64, error) {
	return counted(ctxwit.RenameProperty(types.Entity_Relationship, relType, from, to))
}

// AddNodeProperty sets a property to a default wherever it is missing.
func (c *Context) AddNodeProperty(label, name string, value any) (uint64, error) {
	v, err := toValue(value)
	if err != nil {
		return 0, err
	}
	return counted(ctxwit.AddProperty(types.Entity_Node, label, name, v))
}

// AddRelationshipProperty sets a relationship property wherever it is missing.
func (c *Context) AddRelationshipProperty(relType, name string, value any) (uint64, error) {
	v, err := toValue(value)
	if err != nil {
		return 0, err
	}
	return counted(ctxwit.AddProperty(types.Entity_Relationship, relType, name, v))
}

// RemoveNodeProperty removes a property from the nodes labelled label.
func (c *Context) RemoveNodeProperty(label, name string) (uint64, error) {
	return counted(ctxwit.RemoveProperty(types.Entity_Node, label, name))
}

// RemoveRelationshipProperty removes a property from relationships of a type.
func (c *Context) RemoveRelationshipProperty(relType, name string) (uint64, error) {
	return counted(ctxwit.RemoveProperty(types.Entity_Relationship, relType, name))
}

// Endpoint finds one end of a batch relationship: the node labelled Label
// whose property Key equals the row's field Field.
type Endpoint struct {
	Label, Key, Field string
}

// Batch writes tagged data in chunks; graphmig deletes it if the migration
// fails, and can delete it again on down.
type Batch struct {
	// ID identifies the batch (for DeleteBatch).
	ID string
}

// Batch starts a tracked batch.
func (c *Context) Batch(name string) *Batch {
	return &Batch{ID: ctxwit.BeginBatch(name)}
}

func toRows(rows []Params) ([][]witTypes.Tuple2[string, types.Value], error) {
	out := make([][]witTypes.Tuple2[string, types.Value], 0, len(rows))
	for i, row := range rows {
		wire, err := toParams(row)
		if err != nil {
			return nil, fmt.Errorf("row %d: %w", i, err)
		}
		out = append(out, wire)
	}
	return out, nil
}

// CreateNodes creates one node labelled label per row; returns how many.
func (b *Batch) CreateNodes(label string, rows []Params) (uint64, error) {
	wire, err := toRows(rows)
	if err != nil {
		return 0, err
	}
	return counted(ctxwit.BatchCreateNodes(b.ID, label, wire))
}

// MergeNodes merges one node per row on the key properties; returns how many
// it created.
func (b *Batch) MergeNodes(label string, key []string, rows []Params) (uint64, error) {
	wire, err := toRows(rows)
	if err != nil {
		return 0, err
	}
	return counted(ctxwit.BatchMergeNodes(b.ID, label, key, wire))
}

// CreateRelationships creates one relationship per row between the nodes the
// endpoints find; the row's other fields become its properties.
func (b *Batch) CreateRelationships(relType string, from, to Endpoint, rows []Params) (uint64, error) {
	wire, err := toRows(rows)
	if err != nil {
		return 0, err
	}
	return counted(ctxwit.BatchCreateRelationships(b.ID, relType,
		types.Endpoint{Label: from.Label, Key: from.Key, Field: from.Field},
		types.Endpoint{Label: to.Label, Key: to.Key, Field: to.Field}, wire))
}

// DeleteBatch deletes exactly what a batch created; returns how much went.
func (c *Context) DeleteBatch(id string) (uint64, error) {
	return counted(ctxwit.DeleteBatch(id))
}

// ReadDataset reads a file of the project's data folder.
func (c *Context) ReadDataset(path string) ([]byte, error) {
	r := ctxwit.ReadDataset(path)
	if r.IsErr() {
		e := r.Err()
		switch e.Tag() {
		case types.DatasetError_NotFound:
			return nil, &DatasetError{Kind: "not-found", Message: e.NotFound()}
		case types.DatasetError_Forbidden:
			return nil, &DatasetError{Kind: "forbidden", Message: e.Forbidden()}
		default:
			return nil, &DatasetError{Kind: "io", Message: e.Io()}
		}
	}
	return r.Ok(), nil
}

// ReadText reads a dataset as text.
func (c *Context) ReadText(path string) (string, error) {
	data, err := c.ReadDataset(path)
	return string(data), err
}

// ReadJSON reads a JSON dataset into out (as json.Unmarshal does).
func (c *Context) ReadJSON(path string, out any) error {
	data, err := c.ReadDataset(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Debugf writes a debug line to the migration's log.
func (c *Context) Debugf(format string, args ...any) {
	ctxwit.Log(types.LogLevel_Debug, fmt.Sprintf(format, args...))
}

// Infof writes an info line to the migration's log.
func (c *Context) Infof(format string, args ...any) {
	ctxwit.Log(types.LogLevel_Info, fmt.Sprintf(format, args...))
}

// Warnf writes a warning to the migration's log.
func (c *Context) Warnf(format string, args ...any) {
	ctxwit.Log(types.LogLevel_Warn, fmt.Sprintf(format, args...))
}

// Errorf writes an error line to the migration's log.
func (c *Context) Errorf(format string, args ...any) {
	ctxwit.Log(types.LogLevel_Error, fmt.Sprintf(format, args...))
}
