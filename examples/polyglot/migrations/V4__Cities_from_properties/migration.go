// Package migration is V4 (Go): a relationship restructure. Each person's
// `city` property becomes a City node and a LIVES_IN relationship; down puts
// the property back and removes what up created.
package migration

import (
	"fmt"

	"graphmig"
)

// Migration is what graphmig runs.
var Migration = graphmig.Migration{
	Description: "Cities from person properties",
	Up:          up,
	Down:        down,
}

func up(ctx *graphmig.Context) error {
	rows, err := ctx.Run("MATCH (p:Person) WHERE p.city IS NOT NULL RETURN DISTINCT p.city AS city", nil)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return fmt.Errorf("no person has a city: did V2 import the people?")
	}
	cities := make([]graphmig.Params, 0, len(rows))
	for _, row := range rows {
		cities = append(cities, graphmig.Params{"name": row["city"]})
	}
	if _, err := ctx.Run("UNWIND $cities AS c CREATE (:City {name: c.name})", graphmig.Params{"cities": cities}); err != nil {
		return err
	}
	linked, err := ctx.Int(`MATCH (p:Person) WHERE p.city IS NOT NULL
		MATCH (c:City {name: p.city})
		CREATE (p)-[:LIVES_IN]->(c)
		REMOVE p.city
		WITH count(p) AS n RETURN n`, nil, "n")
	if err != nil {
		return err
	}
	ctx.Infof("%d cities, %d people moved in", len(cities), linked)
	return nil
}

func down(ctx *graphmig.Context) error {
	if _, err := ctx.Run(`MATCH (p:Person)-[r:LIVES_IN]->(c:City)
		SET p.city = c.name
		DELETE r`, nil); err != nil {
		return err
	}
	_, err := ctx.Run("MATCH (c:City) DELETE c", nil)
	return err
}
