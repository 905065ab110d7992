// Typed schema operations: constraints and indexes rendered by the host for
// the target database.
package graphmig

import (
	ctxwit "wit_component/graphmig_migration_context"
	types "wit_component/graphmig_migration_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// Constraint is a constraint to create; build one with Unique, Key, Exists or
// PropertyType.
type Constraint struct{ wit types.Constraint }

// Unique requires the properties' values to be unique together.
func Unique(label string, properties ...string) Constraint {
	return constraint(label, properties, types.MakeConstraintKindUnique())
}

// Key requires the properties to exist and be unique together.
func Key(label string, properties ...string) Constraint {
	return constraint(label, properties, types.MakeConstraintKindKey())
}

// Exists requires the property to exist.
func Exists(label, property string) Constraint {
	return constraint(label, []string{property}, types.MakeConstraintKindExists())
}

// PropertyType requires the property to have a Cypher type such as STRING.
func PropertyType(label, property, cypherType string) Constraint {
	return constraint(label, []string{property}, types.MakeConstraintKindPropertyType(cypherType))
}

func constraint(label string, properties []string, kind types.ConstraintKind) Constraint {
	return Constraint{types.Constraint{
		Name: witTypes.None[string](), Entity: types.Entity_Node,
		Label: label, Properties: properties, Kind: kind,
	}}
}

// Named gives the constraint a name (otherwise one is derived).
func (c Constraint) Named(name string) Constraint {
	c.wit.Name = witTypes.Some(name)
	return c
}

// OnRelationships makes it apply to relationships of the type given as label.
func (c Constraint) OnRelationships() Constraint {
	c.wit.Entity = types.Entity_Relationship
	return c
}

// Index is an index to create; build one with RangeIndex, TextIndex, ...
type Index struct{ wit types.Index }

func index(labels, properties []string, kind types.IndexKind) Index {
	return Index{types.Index{
		Name: witTypes.None[string](), Entity: types.Entity_Node, Labels: labels,
		Properties: properties, Kind: kind,
		VectorDimensions: witTypes.None[uint32](), VectorSimilarity: witTypes.None[string](),
	}}
}

// RangeIndex indexes properties for equality, ranges and prefixes.
func RangeIndex(label string, properties ...string) Index {
	return index([]string{label}, properties, types.IndexKind_Range)
}

// TextIndex indexes a string property for text predicates.
func TextIndex(label, property string) Index {
	return index([]string{label}, []string{property}, types.IndexKind_Text)
}

// PointIndex indexes a point property.
func PointIndex(label, property string) Index {
	return index([]string{label}, []string{property}, types.IndexKind_Point)
}

// FulltextIndex indexes properties of several labels for full-text search.
func FulltextIndex(labels, properties []string) Index {
	return index(labels, properties, types.IndexKind_Fulltext)
}

// VectorIndex indexes vectors of the given dimensions ("cosine" or "euclidean").
func VectorIndex(label, property string, dimensions uint32, similarity string) Index {
	i := index([]string{label}, []string{property}, types.IndexKind_Vector)
	i.wit.VectorDimensions = witTypes.Some(dimensions)
	i.wit.VectorSimilarity = witTypes.Some(similarity)
	return i
}

// Named gives the index a name (otherwise one is derived).
func (i Index) Named(name string) Index {
	i.wit.Name = witTypes.Some(name)
	return i
}

// OnRelationships makes it index relationships of the types given as labels.
func (i Index) OnRelationships() Index {
	i.wit.Entity = types.Entity_Relationship
	return i
}

// SchemaElement is one live constraint or index.
type SchemaElement struct {
	// Kind is "constraint" or "index".
	Kind       string
	Name       string
	Labels     []string
	Properties []string
}

// CreateConstraint creates the constraint unless one of its name exists;
// returns its name.
func (c *Context) CreateConstraint(constraint Constraint) (string, error) {
	r := ctxwit.CreateConstraint(constraint.wit)
	if r.IsErr() {
		return "", schemaError(r.Err())
	}
	return r.Ok(), nil
}

// DropConstraint drops a constraint by name; absence is not an error.
func (c *Context) DropConstraint(name string) error {
	if r := ctxwit.DropConstraint(name); r.IsErr() {
		return schemaError(r.Err())
	}
	return nil
}

// CreateIndex creates the index unless one of its name exists; returns its name.
func (c *Context) CreateIndex(index Index) (string, error) {
	r := ctxwit.CreateIndex(index.wit)
	if r.IsErr() {
		return "", schemaError(r.Err())
	}
	return r.Ok(), nil
}

// DropIndex drops an index by name; absence is not an error.
func (c *Context) DropIndex(name string) error {
	if r := ctxwit.DropIndex(name); r.IsErr() {
		return schemaError(r.Err())
	}
	return nil
}

// Schema lists the live constraints and indexes.
func (c *Context) Schema() ([]SchemaElement, error) {
	r := ctxwit.Schema()
	if r.IsErr() {
		return nil, schemaError(r.Err())
	}
	var out []SchemaElement
	for _, e := range r.Ok() {
		if e.Tag() == types.SchemaElement_Constraint {
			k := e.Constraint()
			out = append(out, SchemaElement{Kind: "constraint", Name: k.Name.SomeOr(""), Labels: []string{k.Label}, Properties: k.Properties})
		} else {
			i := e.Index()
			out = append(out, SchemaElement{Kind: "index", Name: i.Name.SomeOr(""), Labels: i.Labels, Properties: i.Properties})
		}
	}
	return out, nil
}
