package walmgr

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// connect opens a connection to the role's server: override (-d) if given, else
// connstr. The error names the server without repeating a password.
func connect(ctx context.Context, cfg *Config, override string) (*pgx.Conn, error) {
	cs := cfg.ConnStr
	if override != "" {
		cs = override
	}
	pc, err := pgx.ParseConfig(cs)
	if err != nil {
		return nil, fmt.Errorf("connstr: %w", err)
	}
	if pc.RuntimeParams == nil {
		pc.RuntimeParams = map[string]string{}
	}
	pc.RuntimeParams["application_name"] = "walmgrd"
	conn, err := pgx.ConnectConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", describeServer(pc), err)
	}
	return conn, nil
}

func describeServer(pc *pgx.ConnConfig) string {
	return fmt.Sprintf("server %s:%d database %s", pc.Host, pc.Port, pc.Database)
}

// serverInfo is what walmgrd needs to know about the server it backs up.
type serverInfo struct {
	VersionNum     int
	SystemID       string
	WALSegmentSize int64
	DataDirectory  string
	InRecovery     bool
}

const serverInfoSQL = `SELECT current_setting('server_version_num')::int,
	(SELECT system_identifier::text FROM pg_control_system()),
	(SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size'),
	current_setting('data_directory'),
	pg_is_in_recovery()`

func queryServerInfo(ctx context.Context, conn *pgx.Conn) (serverInfo, error) {
	var s serverInfo
	err := conn.QueryRow(ctx, serverInfoSQL).Scan(&s.VersionNum, &s.SystemID, &s.WALSegmentSize, &s.DataDirectory, &s.InRecovery)
	if err != nil {
		return s, fmt.Errorf("query server settings: %w", err)
	}
	return s, nil
}
