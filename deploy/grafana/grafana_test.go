// Package grafana_test checks the shipped Grafana dashboards and provisioning files. The metrics
// the panels query are checked against what vectorheal produces in package rules.
package grafana_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vectorheal/vectorheal/internal/strictyaml"
)

// wantUIDs are fixed forever: alert annotations and bookmarks link to them.
var wantUIDs = map[string]string{
	"fleet-overview.json":   "vectorheal-fleet",
	"index-detail.json":     "vectorheal-index",
	"healing-activity.json": "vectorheal-healing",
}

type dsRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID          int     `json:"id"`
	Type        string  `json:"type"`
	Title       string  `json:"title"`
	Description string  `json:"description"`
	Datasource  *dsRef  `json:"datasource"`
	Panels      []panel `json:"panels"`
	GridPos     struct {
		H, W, X, Y int
	} `json:"gridPos"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Targets []struct {
		Expr       string `json:"expr"`
		Datasource *dsRef `json:"datasource"`
	} `json:"targets"`
}

func readDashboard(t *testing.T, path string) (map[string]any, []panel, []map[string]any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var typed struct {
		Panels     []panel `json:"panels"`
		Templating struct {
			List []map[string]any `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &typed); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return raw, typed.Panels, typed.Templating.List
}

func TestDashboards(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("dashboards", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(wantUIDs) {
		t.Fatalf("found dashboards %v, want %d", files, len(wantUIDs))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, panels, vars := readDashboard(t, f)
			if uid := raw["uid"]; uid != wantUIDs[filepath.Base(f)] {
				t.Errorf("uid %v, want %q", uid, wantUIDs[filepath.Base(f)])
			}
			if _, ok := raw["__inputs"]; ok {
				t.Error("has __inputs: dashboards pick their data source through the datasource variable")
			}
			if v, _ := raw["schemaVersion"].(float64); v < 36 {
				t.Errorf("schemaVersion %v, want 36 or later", raw["schemaVersion"])
			}
			checkVariables(t, vars)
			ids := map[int]bool{}
			var walk func([]panel)
			walk = func(ps []panel) {
				for _, p := range ps {
					if ids[p.ID] {
						t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
					}
					ids[p.ID] = true
					if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
						t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
					}
					walk(p.Panels)
					if p.Type == "row" {
						continue
					}
					checkPanel(t, p)
				}
			}
			walk(panels)
			if len(ids) < 6 {
				t.Errorf("only %d panels", len(ids))
			}
		})
	}
}

func checkVariables(t *testing.T, vars []map[string]any) {
	t.Helper()
	byName := map[string]map[string]any{}
	for _, v := range vars {
		name, _ := v["name"].(string)
		byName[name] = v
	}
	if ds := byName["datasource"]; ds == nil || ds["type"] != "datasource" || ds["query"] != "prometheus" {
		t.Errorf("no datasource variable of type datasource over prometheus: %v", ds)
	}
	for _, name := range []string{"target", "indexrelname"} {
		v := byName[name]
		if v == nil || v["type"] != "query" {
			t.Errorf("no %s query variable", name)
			continue
		}
		ds, _ := v["datasource"].(map[string]any)
		if ds["uid"] != "${datasource}" {
			t.Errorf("variable %s queries data source %v, want ${datasource}", name, ds)
		}
		if q, _ := v["query"].(string); !strings.Contains(q, ", "+name+")") {
			t.Errorf("variable %s: query %q does not list %s values", name, q, name)
		}
	}
}

func checkPanel(t *testing.T, p panel) {
	t.Helper()
	if p.FieldConfig.Defaults.Unit == "" {
		t.Errorf("panel %q has no unit", p.Title)
	}
	if p.Description == "" {
		t.Errorf("panel %q has no description", p.Title)
	}
	if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
		t.Errorf("panel %q data source %+v, want ${datasource}", p.Title, p.Datasource)
	}
	if len(p.Targets) == 0 {
		t.Errorf("panel %q has no query", p.Title)
	}
	for i, tg := range p.Targets {
		if strings.TrimSpace(tg.Expr) == "" {
			t.Errorf("panel %q target %d has no expr", p.Title, i)
		}
		if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q target %d data source %+v, want ${datasource}", p.Title, i, tg.Datasource)
		}
	}
}

type provisioning struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name      string         `yaml:"name"`
		UID       string         `yaml:"uid"`
		Type      string         `yaml:"type"`
		Access    string         `yaml:"access"`
		URL       string         `yaml:"url"`
		IsDefault bool           `yaml:"isDefault"`
		JSONData  map[string]any `yaml:"jsonData"`
	} `yaml:"datasources"`
	Providers []struct {
		Name                  string `yaml:"name"`
		OrgID                 int    `yaml:"orgId"`
		Folder                string `yaml:"folder"`
		FolderUID             string `yaml:"folderUid"`
		Type                  string `yaml:"type"`
		DisableDeletion       bool   `yaml:"disableDeletion"`
		AllowUIUpdates        bool   `yaml:"allowUiUpdates"`
		UpdateIntervalSeconds int    `yaml:"updateIntervalSeconds"`
		Options               struct {
			Path                      string `yaml:"path"`
			FoldersFromFilesStructure bool   `yaml:"foldersFromFilesStructure"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

func TestProvisioning(t *testing.T) {
	read := func(path string) provisioning {
		t.Helper()
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var p provisioning
		if _, err := strictyaml.Decode(path, data, &p); err != nil {
			t.Fatal(err)
		}
		if p.APIVersion != 1 {
			t.Errorf("%s: apiVersion %d, want 1", path, p.APIVersion)
		}
		return p
	}
	ds := read(filepath.Join("provisioning", "datasources", "prometheus.yml"))
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || !ds.Datasources[0].IsDefault || ds.Datasources[0].URL == "" {
		t.Errorf("want one default prometheus data source with a URL, got %+v", ds.Datasources)
	}
	db := read(filepath.Join("provisioning", "dashboards", "vectorheal.yml"))
	if len(db.Providers) != 1 || db.Providers[0].Type != "file" || db.Providers[0].Options.Path == "" {
		t.Errorf("want one file provider with a path, got %+v", db.Providers)
	}
}
