package driver

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

type inodeKey struct {
	dev uint64
	ino uint64
}

// copyTree copies the directory tree at src to dst (which must not exist),
// preserving file types, ownership, permission bits (incl. setuid/setgid/
// sticky), symlinks, hard links within the tree, device nodes and fifos,
// and access/modification times. Sockets are skipped. Extended attributes
// are not copied.
func copyTree(ctx context.Context, src, dst string) error {
	c := &copier{ctx: ctx, links: map[inodeKey]string{}}
	return c.copy(src, dst)
}

type copier struct {
	ctx   context.Context
	links map[inodeKey]string
}

func (c *copier) copy(src, dst string) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return fmt.Errorf("lstat %s: %w", src, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdir(dst, 0o700); err != nil {
			return fmt.Errorf("mkdir %s: %w", dst, err)
		}
		entries, err := os.ReadDir(src)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if err := c.copy(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
	case unix.S_IFREG:
		if st.Nlink > 1 {
			key := inodeKey{dev: uint64(st.Dev), ino: st.Ino}
			if first, ok := c.links[key]; ok {
				if err := os.Link(first, dst); err != nil {
					return fmt.Errorf("link %s: %w", dst, err)
				}
				return nil // shares the first copy's inode and attributes
			}
			c.links[key] = dst
		}
		if err := copyFileContent(src, dst); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
		if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
			return fmt.Errorf("lchown %s: %w", dst, err)
		}
		return setTimes(dst, &st, true)
	case unix.S_IFIFO, unix.S_IFCHR, unix.S_IFBLK:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("mknod %s: %w", dst, err)
		}
	case unix.S_IFSOCK:
		return nil
	default:
		return fmt.Errorf("%s: unsupported file type %o", src, st.Mode&unix.S_IFMT)
	}
	// chown before chmod: chown clears setuid/setgid bits.
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("chown %s: %w", dst, err)
	}
	if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
		return fmt.Errorf("chmod %s: %w", dst, err)
	}
	return setTimes(dst, &st, false)
}

func copyFileContent(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func setTimes(path string, st *unix.Stat_t, nofollow bool) error {
	ts := []unix.Timespec{st.Atim, st.Mtim}
	flags := 0
	if nofollow {
		flags = unix.AT_SYMLINK_NOFOLLOW
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, flags); err != nil {
		return fmt.Errorf("utimes %s: %w", path, err)
	}
	return nil
}

// diskUsage walks dir and returns the allocated bytes and the inode count.
func diskUsage(dir string) (bytes int64, inodes int64, err error) {
	seen := map[inodeKey]bool{}
	err = filepath.Walk(dir, func(_ string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st, ok := info.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		key := inodeKey{dev: uint64(st.Dev), ino: st.Ino}
		if seen[key] {
			return nil
		}
		seen[key] = true
		inodes++
		bytes += st.Blocks * 512
		return nil
	})
	return bytes, inodes, err
}
