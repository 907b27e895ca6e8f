package main

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Media types of the OCI image specification (image-spec v1.1).
const (
	mediaIndex    = "application/vnd.oci.image.index.v1+json"
	mediaManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaConfig   = "application/vnd.oci.image.config.v1+json"
	mediaLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
)

// defaultPath is the PATH of an image that sets none, as distroless's.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// blob is content addressed by its digest.
type blob struct {
	data   []byte
	digest string // sha256:<hex>
}

func newBlob(data []byte) blob { return blob{data, digestOf(data)} }

func digestOf(data []byte) string {
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// descriptor is an OCI content descriptor.
type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int               `json:"size"`
	Platform    *ociPlatform      `json:"platform,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

type ociPlatform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

// imageConfig is the OCI image configuration, the fields this tool sets.
type imageConfig struct {
	Created      string `json:"created"`
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
	Config       struct {
		User       string   `json:"User"`
		Env        []string `json:"Env"`
		Entrypoint []string `json:"Entrypoint,omitempty"`
		Cmd        []string `json:"Cmd,omitempty"`
		WorkingDir string   `json:"WorkingDir"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
	History []history `json:"history"`
}

type history struct {
	Created   string `json:"created"`
	CreatedBy string `json:"created_by"`
}

// image is everything the archive holds.
type image struct {
	name                    string // REPOSITORY:TAG
	layer                   blob
	config, manifest, index blob
	archiveSize             int64 // set by writeArchive
}

// build makes the layer, then the config, manifest and index that name it.
func build(cfg *config) (*image, error) {
	l, err := buildLayer(cfg)
	if err != nil {
		return nil, err
	}
	conf, err := json.Marshal(newImageConfig(cfg, l.diffID))
	if err != nil {
		return nil, err
	}
	img := &image{name: cfg.name, layer: newBlob(l.data), config: newBlob(conf)}
	man, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaManifest,
		"config":        descriptor{MediaType: mediaConfig, Digest: img.config.digest, Size: len(conf)},
		"layers":        []descriptor{{MediaType: mediaLayer, Digest: img.layer.digest, Size: len(l.data)}},
	})
	if err != nil {
		return nil, err
	}
	img.manifest = newBlob(man)
	idx, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     mediaIndex,
		"manifests": []descriptor{{
			MediaType: mediaManifest, Digest: img.manifest.digest, Size: len(man),
			Platform: &ociPlatform{Architecture: cfg.platform.arch, OS: cfg.platform.os, Variant: cfg.platform.variant},
			Annotations: map[string]string{
				"io.containerd.image.name":          cfg.name,                                      // the name ctr images import gives it
				"org.opencontainers.image.ref.name": cfg.name[strings.LastIndex(cfg.name, ":")+1:], // the tag, the layout's reference
			},
		}},
	})
	if err != nil {
		return nil, err
	}
	img.index = newBlob(idx)
	return img, nil
}

// newImageConfig is the image's configuration: the user, entrypoint,
// command and environment, and the layer's diff_id.
func newImageConfig(cfg *config, diffID string) imageConfig {
	env := cfg.env
	if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "PATH=") }) {
		env = append([]string{defaultPath}, env...)
	}
	var c imageConfig
	c.Created = cfg.created.Format(time.RFC3339)
	c.Architecture, c.OS, c.Variant = cfg.platform.arch, cfg.platform.os, cfg.platform.variant
	c.Config.User = fmt.Sprintf("%d:%d", cfg.uid, cfg.gid)
	c.Config.Env, c.Config.Entrypoint, c.Config.Cmd, c.Config.WorkingDir = env, cfg.entrypoint, cfg.cmd, "/"
	c.RootFS.Type, c.RootFS.DiffIDs = "layers", []string{diffID}
	c.History = []history{{Created: c.Created, CreatedBy: "hack/ociimage"}}
	return c
}

// archiveFile is one member of the archive.
type archiveFile struct {
	name string // a directory's ends in "/"
	data []byte
}

// archiveFiles lists the archive: the OCI layout, and a Docker-style
// manifest.json naming the same blobs (docker load reads it; the layer's
// path names a gzip-compressed tar, which it accepts).
func archiveFiles(img *image) ([]archiveFile, error) {
	name := func(b blob) string { return "blobs/sha256/" + strings.TrimPrefix(b.digest, "sha256:") }
	docker, err := json.Marshal([]map[string]any{{
		"Config":   name(img.config),
		"RepoTags": []string{img.name},
		"Layers":   []string{name(img.layer)},
	}})
	if err != nil {
		return nil, err
	}
	return []archiveFile{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", img.index.data},
		{"manifest.json", docker},
		{"blobs/", nil},
		{"blobs/sha256/", nil},
		{name(img.config), img.config.data},
		{name(img.manifest), img.manifest.data},
		{name(img.layer), img.layer.data},
	}, nil
}

// writeArchive writes the image's archive to a temporary file in out's
// directory, then renames it over out: a reader never sees half an
// archive, and a failure leaves out as it was.
func writeArchive(out string, img *image) (err error) {
	files, err := archiveFiles(img)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".tmp*")
	if err != nil {
		return fmt.Errorf("-o %s: %w", out, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("-o %s: %w", out, err)
		}
	}()
	tw := tar.NewWriter(tmp)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.data)), ModTime: time.Unix(0, 0)}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return err
	}
	if img.archiveSize, err = tmp.Seek(0, io.SeekCurrent); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), out)
}
