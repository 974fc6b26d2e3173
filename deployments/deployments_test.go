// Package deployments holds no code: its test checks the deployment files
// beside it (compose, Kubernetes, systemd, Grafana) without Docker or a
// cluster: every YAML parses, every Sluice configuration passes
// `sluice validate`, every dashboard is JSON whose metrics exist in the
// code, and the systemd unit passes `systemd-analyze verify`.
package deployments

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// sluiceBinary builds cmd/sluice once per test run.
func sluiceBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "sluice-deployments-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "sluice")
		out, err := exec.Command("go", "build", "-o", binPath, "../cmd/sluice").CombinedOutput()
		if err != nil {
			buildErr = errors.New("building sluice: " + err.Error() + "\n" + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// yamlFiles lists the .yml and .yaml files under this directory.
func yamlFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ext := filepath.Ext(path); !d.IsDir() && (ext == ".yml" || ext == ".yaml") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// decodeAll decodes every document of a YAML file.
func decodeAll(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, doc)
	}
}

func TestYAMLParses(t *testing.T) {
	files := yamlFiles(t)
	for _, want := range []string{"compose/docker-compose.yml", "compose/sluice.yaml", "kubernetes/statefulset.yaml", "kubernetes/configmap.yaml"} {
		if !slices.Contains(files, filepath.FromSlash(want)) {
			t.Errorf("missing %s (found %v)", want, files)
		}
	}
	for _, path := range files {
		t.Run(path, func(t *testing.T) {
			if docs := decodeAll(t, path); len(docs) == 0 || docs[0] == nil {
				t.Fatalf("%s holds no YAML document", path)
			}
		})
	}
}

// k8sObject returns the Kubernetes object of kind and name in path.
func k8sObject(t *testing.T, path, kind, name string) map[string]any {
	t.Helper()
	for _, doc := range decodeAll(t, path) {
		md, _ := doc["metadata"].(map[string]any)
		if doc["kind"] == kind && md["name"] == name {
			return doc
		}
	}
	t.Fatalf("%s: no %s %s", path, kind, name)
	return nil
}

// configMapConfig writes the ConfigMap's sluice.yaml to a temporary file.
func configMapConfig(t *testing.T) string {
	t.Helper()
	cm := k8sObject(t, "kubernetes/configmap.yaml", "ConfigMap", "sluice-config")
	data, _ := cm["data"].(map[string]any)
	cfg, ok := data["sluice.yaml"].(string)
	if !ok {
		t.Fatal("ConfigMap sluice-config has no data.sluice.yaml")
	}
	path := filepath.Join(t.TempDir(), "sluice.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// validate runs `sluice validate -c path` with no SLUICE_* variables set.
func validate(t *testing.T, path string) (string, error) {
	t.Helper()
	cmd := exec.Command(sluiceBinary(t), "validate", "-c", path)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLUICE_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestConfigsValidate(t *testing.T) {
	compose, err := os.ReadFile("compose/sluice.yaml")
	if err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	bad := strings.Replace(string(compose), "- sink: kafka-alarms", "- sink: kafka-nope", 1)
	if err := os.WriteFile(broken, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, wantErr string
	}{
		{name: "compose", path: "compose/sluice.yaml"},
		{name: "kubernetes configmap", path: configMapConfig(t)},
		{name: "unknown sink is caught", path: broken, wantErr: "kafka-nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := validate(t, tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(out, tt.wantErr) {
					t.Fatalf("validate = %v, %q; want failure mentioning %q", err, out, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("sluice validate -c %s: %v\n%s", tt.path, err, out)
			}
		})
	}
}

// TestKubernetes checks what the probes and the spool depend on: the
// config's data_dir is the volume claim's mount, the probes hit the admin
// port, and the container cannot write outside its volumes.
func TestKubernetes(t *testing.T) {
	sts := k8sObject(t, "kubernetes/statefulset.yaml", "StatefulSet", "sluice")
	var spec struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Ports []struct {
							Name          string `yaml:"name"`
							ContainerPort int    `yaml:"containerPort"`
						} `yaml:"ports"`
						LivenessProbe struct {
							HTTPGet struct{ Path, Port string } `yaml:"httpGet"`
						} `yaml:"livenessProbe"`
						ReadinessProbe struct {
							HTTPGet struct{ Path, Port string } `yaml:"httpGet"`
						} `yaml:"readinessProbe"`
						SecurityContext struct {
							ReadOnlyRootFilesystem bool `yaml:"readOnlyRootFilesystem"`
							RunAsNonRoot           bool `yaml:"runAsNonRoot"`
						} `yaml:"securityContext"`
						Resources struct {
							Requests map[string]string `yaml:"requests"`
						} `yaml:"resources"`
						VolumeMounts []struct {
							Name      string `yaml:"name"`
							MountPath string `yaml:"mountPath"`
						} `yaml:"volumeMounts"`
					} `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
			VolumeClaimTemplates []struct {
				Metadata struct{ Name string } `yaml:"metadata"`
			} `yaml:"volumeClaimTemplates"`
		} `yaml:"spec"`
	}
	raw, err := yaml.Marshal(sts)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	if len(spec.Spec.Template.Spec.Containers) != 1 || len(spec.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("want one container and one volume claim template, got %+v", spec.Spec)
	}
	c := spec.Spec.Template.Spec.Containers[0]
	var cfg struct {
		Ingest struct {
			DataDir string `yaml:"data_dir"`
		} `yaml:"ingest"`
		Admin struct{ Address string } `yaml:"admin"`
	}
	data, err := os.ReadFile(configMapConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	claim := spec.Spec.VolumeClaimTemplates[0].Metadata.Name
	mounted := false
	for _, m := range c.VolumeMounts {
		mounted = mounted || (m.Name == claim && m.MountPath == cfg.Ingest.DataDir)
	}
	if !mounted {
		t.Errorf("volume claim %q is not mounted at ingest.data_dir %q: %+v", claim, cfg.Ingest.DataDir, c.VolumeMounts)
	}
	ports := map[string]int{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if ports["mqtt"] != 1883 || ports["admin"] != 8088 || !strings.HasSuffix(cfg.Admin.Address, ":8088") {
		t.Errorf("ports %v, admin.address %q: want mqtt 1883 and admin 8088", ports, cfg.Admin.Address)
	}
	if c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe.HTTPGet.Path != "/readyz" ||
		c.LivenessProbe.HTTPGet.Port != "admin" || c.ReadinessProbe.HTTPGet.Port != "admin" {
		t.Errorf("probes: liveness %+v, readiness %+v", c.LivenessProbe, c.ReadinessProbe)
	}
	if !c.SecurityContext.ReadOnlyRootFilesystem || !c.SecurityContext.RunAsNonRoot || c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" {
		t.Errorf("security context %+v, requests %v", c.SecurityContext, c.Resources.Requests)
	}
}
