// A real OpenID Connect provider (npm's certified oidc-provider) on loopback, for the sign-in
// tests (tests/oidc.lua starts it). Usage: node provider.mjs CONFIG.json
// CONFIG: {port_file, mode, client: {client_id, client_secret, redirect_uris}, jwks: {keys},
//          accounts: {NAME: {groups: [...]}}, id_token_ttl}
// mode "provider" serves the provider; "garbage" answers every request with text that is not
// JSON; "slow" answers nothing for a minute; "wrong_issuer" serves a discovery document that
// names another issuer; "forger" serves discovery, the public keys of jwks, and at its token
// endpoint the ID token the test last wrote to token_file (a provider that lies). Its login has no form: the interaction page signs in the account that
// its query names (?user=NAME), else the one the browser's cookie test_user names (a browser
// test sets it on the provider's origin: a browser cannot add to the provider's redirect),
// else alice, and grants what the client asked.
import fs from "node:fs";
import http from "node:http";
import Provider from "oidc-provider";

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const server = http.createServer();
await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
const port = server.address().port;
const issuer = `http://127.0.0.1:${port}`;

if (cfg.mode === "garbage") {
  server.on("request", (req, res) => { res.writeHead(200, { "content-type": "application/json" }); res.end("<html>not json"); });
} else if (cfg.mode === "slow") {
  server.on("request", () => {}); // never answers
} else if (cfg.mode === "forger") {
  server.on("request", (req, res) => {
    const send = (doc) => { res.writeHead(200, { "content-type": "application/json" }); res.end(JSON.stringify(doc)); };
    if (req.url === "/.well-known/openid-configuration") {
      send({ issuer, authorization_endpoint: issuer + "/auth", token_endpoint: issuer + "/token", jwks_uri: issuer + "/jwks",
        code_challenge_methods_supported: ["S256"] });
    } else if (req.url === "/jwks") {
      send(cfg.jwks);
    } else {
      req.resume();
      req.on("end", () => send({ token_type: "Bearer", access_token: "x", id_token: fs.readFileSync(cfg.token_file, "utf8") }));
    }
  });
} else if (cfg.mode === "wrong_issuer") {
  server.on("request", (req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ issuer: "http://elsewhere.example", authorization_endpoint: issuer + "/auth",
      token_endpoint: issuer + "/token", jwks_uri: issuer + "/jwks" }));
  });
} else {
  const accounts = cfg.accounts || {};
  const provider = new Provider(issuer, {
    clients: [{ ...cfg.client, grant_types: ["authorization_code"], response_types: ["code"],
      token_endpoint_auth_method: "client_secret_post" }],
    jwks: cfg.jwks,
    claims: { openid: ["sub"], profile: ["preferred_username", "groups"] },
    conformIdTokenClaims: false, // the groups in the ID token itself, not only from userinfo
    ttl: { IdToken: cfg.id_token_ttl || 3600 },
    features: { devInteractions: { enabled: false } },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, id) {
      if (!accounts[id]) return undefined;
      return { accountId: id, async claims() { return { sub: id, preferred_username: id, groups: accounts[id].groups || [] }; } };
    },
  });
  provider.use(async (ctx, next) => {
    if (!ctx.path.startsWith("/interaction/")) return next();
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    let result;
    if (details.prompt.name === "login") {
      const named = /(?:^|;\s*)test_user=([a-z0-9_-]+)/.exec(ctx.get("cookie") || "");
      result = { login: { accountId: ctx.query.user || (named && named[1]) || "alice" } };
    } else {
      const grant = new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      grant.addOIDCScope(details.params.scope);
      result = { consent: { grantId: await grant.save() } };
    }
    await provider.interactionFinished(ctx.req, ctx.res, result, { mergeWithLastSubmission: false });
    ctx.respond = false;
  });
  server.on("request", provider.callback());
}
fs.writeFileSync(cfg.port_file + ".tmp", String(port));
fs.renameSync(cfg.port_file + ".tmp", cfg.port_file);
