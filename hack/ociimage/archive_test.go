package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// archive is an image archive read back and checked as a runtime would
// read it: every blob found by its digest, and sized as its descriptor says.
type archive struct {
	index    struct{ Manifests []descriptor }
	name     string // the io.containerd.image.name annotation
	manifest struct {
		Config descriptor
		Layers []descriptor
	}
	config imageConfig
	layer  []tarEntry // the layer's entries, in order
}

type tarEntry struct {
	hdr  tar.Header
	data []byte
}

// readArchive reads the archive at path and checks its structure: the OCI
// layout, the index, the manifest, the config and the layer, with the
// layer's diff_id, and Docker's manifest.json naming the same blobs.
func readArchive(t *testing.T, path string) *archive {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = data
	}
	blob := func(d descriptor) []byte {
		t.Helper()
		data, ok := files["blobs/sha256/"+strings.TrimPrefix(d.Digest, "sha256:")]
		if !ok || digestOf(data) != d.Digest || len(data) != d.Size {
			t.Fatalf("blob %s (size %d): missing, or its content does not match", d.Digest, d.Size)
		}
		return data
	}
	decode := func(data []byte, v any) {
		t.Helper()
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("%v\n%s", err, data)
		}
	}
	if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Fatalf("oci-layout = %q", got)
	}
	a := new(archive)
	decode(files["index.json"], &a.index)
	if len(a.index.Manifests) != 1 || a.index.Manifests[0].MediaType != mediaManifest {
		t.Fatalf("index.json: %s", files["index.json"])
	}
	a.name = a.index.Manifests[0].Annotations["io.containerd.image.name"]
	decode(blob(a.index.Manifests[0]), &a.manifest)
	if a.manifest.Config.MediaType != mediaConfig || len(a.manifest.Layers) != 1 || a.manifest.Layers[0].MediaType != mediaLayer {
		t.Fatalf("manifest: %+v", a.manifest)
	}
	decode(blob(a.manifest.Config), &a.config)
	gz := blob(a.manifest.Layers[0])
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{digestOf(raw)}; fmt.Sprint(a.config.RootFS.DiffIDs) != fmt.Sprint(want) {
		t.Fatalf("diff_ids %v, want %v (the uncompressed layer's digest)", a.config.RootFS.DiffIDs, want)
	}
	lr := tar.NewReader(bytes.NewReader(raw))
	for {
		h, err := lr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(lr)
		a.layer = append(a.layer, tarEntry{*h, data})
	}
	var docker []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	decode(files["manifest.json"], &docker)
	wantDocker := fmt.Sprint([]string{"blobs/sha256/" + strings.TrimPrefix(a.manifest.Config.Digest, "sha256:")},
		[]string{a.name}, []string{"blobs/sha256/" + strings.TrimPrefix(a.manifest.Layers[0].Digest, "sha256:")})
	if len(docker) != 1 || fmt.Sprint([]string{docker[0].Config}, docker[0].RepoTags, docker[0].Layers) != wantDocker {
		t.Fatalf("manifest.json %s, want %s", files["manifest.json"], wantDocker)
	}
	return a
}

// entry returns the layer's entry for name ("tokend", "tmp/").
func (a *archive) entry(t *testing.T, name string) tarEntry {
	t.Helper()
	for _, e := range a.layer {
		if e.hdr.Name == name {
			return e
		}
	}
	t.Fatalf("the layer has no %s", name)
	return tarEntry{}
}

// unpack writes the layer into a new directory, as a runtime's snapshotter
// does: owners, modes and links as recorded.
func (a *archive) unpack(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for _, e := range a.layer {
		p := filepath.Join(root, e.hdr.Name)
		var err error
		switch e.hdr.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o755)
		case tar.TypeReg:
			err = os.WriteFile(p, e.data, 0o600)
		case tar.TypeSymlink:
			err = os.Symlink(e.hdr.Linkname, p)
			if err == nil {
				err = os.Lchown(p, e.hdr.Uid, e.hdr.Gid)
			}
			if err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err == nil {
			err = os.Chmod(p, e.hdr.FileInfo().Mode())
		}
		if err == nil {
			err = os.Lchown(p, e.hdr.Uid, e.hdr.Gid)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}
