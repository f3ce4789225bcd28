package daemon

func testConfig(dataDir string) Config {
	return Config{Listen: "127.0.0.1:0", OTLPListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", DataDir: dataDir, Logger: quietLogger()}
}
