// The generic peer of sluice's ingest benchmark: Bento with only the components the
// benchmark uses (kafka_franz input, sql_insert output, the postgres driver). Built and
// cached by scripts/bento.sh; a plain `go install` of Bento's own command does not resolve.
package main

import (
	"context"

	"github.com/warpstreamlabs/bento/public/service"

	// kafka_franz (and the other Kafka components of the same package)
	_ "github.com/warpstreamlabs/bento/public/components/kafka"
	// mapping, log and the other pure processors
	_ "github.com/warpstreamlabs/bento/public/components/pure"
	// sql_insert and friends without their drivers, then PostgreSQL's
	_ "github.com/lib/pq"
	_ "github.com/warpstreamlabs/bento/public/components/sql/base"
)

func main() {
	service.RunCLI(context.Background(), service.CLIOptSetBinaryName("bento"), service.CLIOptSetProductName("Bento"))
}
