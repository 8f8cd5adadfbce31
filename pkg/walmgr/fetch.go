package walmgr

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/skytools-go/skytools/pkg/walmgr/repo"
)

// ErrNotArchived means the repository is there and readable and has no such file: the
// only case in which restore_command may tell PostgreSQL "not found".
var ErrNotArchived = errors.New("not in the archive")

// Fetch restores the archived file name (restore_command's %f) to dest (%p). The
// content is written to a temporary file beside dest, verified against its stored
// size and SHA-256, and only then renamed to dest; a corrupt file never reaches
// PostgreSQL. The error wraps ErrNotArchived only when the file is genuinely absent.
func (r *Repository) Fetch(ctx context.Context, name, dest string) (Trailer, error) {
	w, err := ParseWALName(name)
	if err != nil {
		return Trailer{}, err
	}
	obj, err := r.Store.Open(ctx, walKey(w))
	if err != nil {
		if errors.Is(err, repo.ErrNotFound) {
			return Trailer{}, fmt.Errorf("fetch %s: %w", name, ErrNotArchived)
		}
		return Trailer{}, fmt.Errorf("fetch %s: %w", name, err)
	}
	defer obj.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".walmgrd-*")
	if err != nil {
		return Trailer{}, fmt.Errorf("fetch %s: %w", name, err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	t, err := r.codec.decode(tmp, obj)
	if err != nil {
		return t, fmt.Errorf("fetch %s from %s/%s: %w", name, r.Path, walKey(w), err)
	}
	if err := tmp.Close(); err != nil {
		return t, fmt.Errorf("fetch %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return t, fmt.Errorf("fetch %s: %w", name, err)
	}
	ok = true
	return t, nil
}
