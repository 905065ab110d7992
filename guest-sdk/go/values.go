// Conversions between Go values and the flattened value trees of the WIT.
package graphmig

import (
	"fmt"
	"math"
	"reflect"
	"sort"

	types "wit_component/graphmig_migration_types"

	witTypes "go.bytecodealliance.org/pkg/wit/types"
)

// Node is a node returned by a query.
type Node struct {
	ID         int64
	Labels     []string
	Properties map[string]any
}

// Relationship is a relationship returned by a query.
type Relationship struct {
	ID, Start, End int64
	Type           string
	Properties     map[string]any
}

func toParams(params Params) ([]witTypes.Tuple2[string, types.Value], error) {
	names := make([]string, 0, len(params))
	for name := range params {
		names = append(names, name)
	}
	// A stable order keeps the journal's parameter summaries repeatable.
	sort.Strings(names)
	out := make([]witTypes.Tuple2[string, types.Value], 0, len(params))
	for _, name := range names {
		v, err := toValue(params[name])
		if err != nil {
			return nil, fmt.Errorf("parameter %q: %w", name, err)
		}
		out = append(out, witTypes.Tuple2[string, types.Value]{F0: name, F1: v})
	}
	return out, nil
}

func toValue(value any) (types.Value, error) {
	var nodes []types.ValueNode
	if _, err := push(&nodes, value); err != nil {
		return types.Value{}, err
	}
	return types.Value{Nodes: nodes}, nil
}

// push appends value (and its children after it) and returns its index.
func push(nodes *[]types.ValueNode, value any) (uint32, error) {
	at := uint32(len(*nodes))
	*nodes = append(*nodes, types.MakeValueNodeNull())
	var node types.ValueNode
	switch v := value.(type) {
	case nil:
		return at, nil
	case bool:
		node = types.MakeValueNodeBoolean(v)
	case int:
		node = types.MakeValueNodeInteger(int64(v))
	case int8:
		node = types.MakeValueNodeInteger(int64(v))
	case int16:
		node = types.MakeValueNodeInteger(int64(v))
	case int32:
		node = types.MakeValueNodeInteger(int64(v))
	case int64:
		node = types.MakeValueNodeInteger(v)
	case uint8:
		node = types.MakeValueNodeInteger(int64(v))
	case uint16:
		node = types.MakeValueNodeInteger(int64(v))
	case uint32:
		node = types.MakeValueNodeInteger(int64(v))
	case uint:
		if uint64(v) > math.MaxInt64 {
			return 0, fmt.Errorf("%d does not fit a Cypher integer", v)
		}
		node = types.MakeValueNodeInteger(int64(v))
	case uint64:
		if v > math.MaxInt64 {
			return 0, fmt.Errorf("%d does not fit a Cypher integer", v)
		}
		node = types.MakeValueNodeInteger(int64(v))
	case float32:
		node = types.MakeValueNodeFloat(float64(v))
	case float64:
		node = types.MakeValueNodeFloat(v)
	case string:
		node = types.MakeValueNodeText(v)
	case []byte:
		node = types.MakeValueNodeBytes(v)
	default:
		rv := reflect.ValueOf(value)
		switch rv.Kind() {
		case reflect.Slice, reflect.Array:
			items := make([]uint32, 0, rv.Len())
			for i := 0; i < rv.Len(); i++ {
				child, err := push(nodes, rv.Index(i).Interface())
				if err != nil {
					return 0, fmt.Errorf("[%d]: %w", i, err)
				}
				items = append(items, child)
			}
			node = types.MakeValueNodeList(items)
		case reflect.Map:
			if rv.Type().Key().Kind() != reflect.String {
				return 0, fmt.Errorf("a map must have string keys, not %s", rv.Type().Key())
			}
			keys := make([]string, 0, rv.Len())
			for _, k := range rv.MapKeys() {
				keys = append(keys, k.String())
			}
			sort.Strings(keys)
			entries := make([]witTypes.Tuple2[string, uint32], 0, len(keys))
			for _, k := range keys {
				child, err := push(nodes, rv.MapIndex(reflect.ValueOf(k).Convert(rv.Type().Key())).Interface())
				if err != nil {
					return 0, fmt.Errorf("%q: %w", k, err)
				}
				entries = append(entries, witTypes.Tuple2[string, uint32]{F0: k, F1: child})
			}
			node = types.MakeValueNodeMap(entries)
		default:
			return 0, fmt.Errorf("%T has no Cypher form", value)
		}
	}
	(*nodes)[at] = node
	return at, nil
}

func fromValue(value types.Value) any {
	if len(value.Nodes) == 0 {
		return nil
	}
	return fromNode(value.Nodes, 0)
}

func fromNode(nodes []types.ValueNode, at uint32) any {
	if int(at) >= len(nodes) {
		return nil
	}
	properties := func(entries []witTypes.Tuple2[string, uint32]) map[string]any {
		out := make(map[string]any, len(entries))
		for _, e := range entries {
			out[e.F0] = fromNode(nodes, e.F1)
		}
		return out
	}
	n := nodes[at]
	switch n.Tag() {
	case types.ValueNode_Boolean:
		return n.Boolean()
	case types.ValueNode_Integer:
		return n.Integer()
	case types.ValueNode_Float:
		return n.Float()
	case types.ValueNode_Text:
		return n.Text()
	case types.ValueNode_Bytes:
		return n.Bytes()
	case types.ValueNode_List:
		items := n.List()
		out := make([]any, 0, len(items))
		for _, i := range items {
			out = append(out, fromNode(nodes, i))
		}
		return out
	case types.ValueNode_Map:
		return properties(n.Map())
	case types.ValueNode_GraphNode:
		g := n.GraphNode()
		return Node{ID: g.Id, Labels: g.Labels, Properties: properties(g.Properties)}
	case types.ValueNode_GraphRelationship:
		g := n.GraphRelationship()
		return Relationship{ID: g.Id, Start: g.Start, End: g.End, Type: g.RelType, Properties: properties(g.Properties)}
	case types.ValueNode_Other:
		return n.Other()
	default:
		return nil
	}
}
