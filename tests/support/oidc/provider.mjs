// A real OpenID provider for Lanterne's OpenID Connect tests: panva's certified `oidc-provider`
// (the library behind many production identity servers), run on the loopback with one static
// client and the accounts the test hands it. Lanterne talks to it exactly as to Keycloak or Azure
// AD: discovery, authorization endpoint with PKCE, token endpoint, JWKS, userinfo.
//
//   node provider.mjs CONFIG.json      prints {"issuer": "http://HOST:PORT"} once it listens
//
// CONFIG.json (written by tests/api/test_oidc.py):
//   host        "127.0.0.1" or "localhost" (a browser test uses another site than the console's)
//   client      {client_id, client_secret, redirect_uris}
//   key         the private signing JWK (RS256, with a kid): the test keeps it to forge tokens
//   accounts    {LOGIN: {password, otp?, claims: {preferred_username, groups, ...}}}
//   acr_values  the assurance levels this provider may assert
//
// The login page at /interaction/UID is what a person sees: login, password and, for an account
// with one, the directory's own one-time code. A code typed right makes the ID token assert
// amr ["pwd", "otp", "mfa"] and the highest acr; a password alone asserts amr ["pwd"].
//
// Test-only controls, never part of a real provider: POST /__test/groups (login, group…) moves a
// person to other groups; POST /__test/tamper with a mode makes the
// next token response carry a forged ID token (expired, wrong audience, wrong issuer, wrong
// nonce, signed by another key, unsigned, tampered payload, HS256 signed with the public key),
// so that the console's checks are tested through its real callback.
import { readFileSync } from "node:fs";
import http from "node:http";
import * as jose from "jose";
import Provider from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const accounts = config.accounts;
const acrValues = config.acr_values ?? [];
const signingKey = await jose.importJWK(config.key, "RS256");
let tamper = null;

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
}

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, message) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>City directory</title></head>
<body><h1>City directory</h1><p id="message">${escape(message)}</p>
<form method="post" action="/interaction/${escape(uid)}/login">
<label>Login <input name="login" id="idp-login" autocomplete="off"></label>
<label>Password <input name="password" id="idp-password" type="password"></label>
<label>One-time code <input name="otp" id="idp-otp" autocomplete="off"></label>
<button type="submit" id="idp-submit">Sign in</button></form></body></html>`;
}

async function forge(idToken, mode) {
  const claims = jose.decodeJwt(idToken);
  const header = jose.decodeProtectedHeader(idToken);
  const now = Math.floor(Date.now() / 1000);
  const sign = (payload, key = signingKey, alg = "RS256") =>
    new jose.SignJWT(payload).setProtectedHeader({ alg, kid: header.kid, typ: "JWT" }).sign(key);
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  switch (mode) {
    case "expired":
      return sign({ ...claims, iat: now - 7200, exp: now - 3600 });
    case "wrong_audience":
      return sign({ ...claims, aud: "another-client" });
    case "wrong_issuer":
      return sign({ ...claims, iss: "https://impostor.example" });
    case "wrong_nonce":
      return sign({ ...claims, nonce: "not-the-nonce-lanterne-sent" });
    case "other_key": {
      const { privateKey } = await jose.generateKeyPair("RS256");
      return sign(claims, privateKey);
    }
    case "unsigned":
      return `${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.`;
    case "tampered": {
      const [h, , s] = idToken.split(".");
      return `${h}.${b64({ ...claims, sub: "someone-else" })}.${s}`;
    }
    case "hs256_public_key": {
      // The classic algorithm confusion: HMAC keyed with the provider's public key, which anyone
      // can download from the JWKS.
      const { d, p, q, dp, dq, qi, key_ops, ...publicJwk } = config.key;
      const pem = await jose.exportSPKI(await jose.importJWK(publicJwk, "RS256", { extractable: true }));
      return sign(claims, new TextEncoder().encode(pem), "HS256");
    }
    default:
      throw new Error(`unknown tamper mode ${mode}`);
  }
}

const server = http.createServer();
server.listen(0, config.host, () => {
  const issuer = `http://${config.host}:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        ...config.client,
        response_types: ["code"],
        grant_types: ["authorization_code"],
        token_endpoint_auth_method: "client_secret_basic",
      },
    ],
    jwks: { keys: [config.key] },
    // The library puts `acr` and `amr` in an ID token only when a scope lists them (or the
    // claims parameter asks); a directory such as Keycloak or Azure AD always sends them.
    claims: {
      openid: ["sub", "acr", "amr", "auth_time"],
      profile: ["preferred_username", "name"],
      groups: ["groups"],
    },
    acrValues,
    cookies: { keys: ["lanterne-test-provider-cookie-key"] },
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    async findAccount(ctx, id) {
      const account = accounts[id];
      if (!account) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, ...account.claims }) };
    },
    // The console is this provider's own first-party client: no consent screen.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope("openid profile groups");
      await grant.save();
      return grant;
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  });
  provider.proxy = false;

  provider.use(async (ctx, next) => {
    if (ctx.method === "POST" && ctx.path === "/__test/tamper") {
      tamper = (await readForm(ctx.req)).get("mode") || null;
      ctx.body = { tamper };
      return;
    }
    if (ctx.method === "POST" && ctx.path === "/__test/groups") {
      // The directory moves a person to other groups (the console follows at the next sign-in).
      const form = await readForm(ctx.req);
      const groups = form.getAll("group");
      accounts[form.get("login")].claims.groups = groups;
      ctx.body = { groups };
      return;
    }
    const match = ctx.path.match(/^\/interaction\/([^/]+)(\/login)?$/);
    if (match) {
      const details = await provider.interactionDetails(ctx.req, ctx.res);
      if (details.prompt.name !== "login") {
        ctx.status = 400;
        ctx.body = `unexpected prompt ${details.prompt.name}`;
        return;
      }
      if (!match[2]) {
        ctx.type = "html";
        ctx.body = loginPage(details.uid, "Sign in with your city account.");
        return;
      }
      const form = await readForm(ctx.req);
      const login = form.get("login") ?? "";
      const account = accounts[login];
      if (!account || account.password !== form.get("password")) {
        ctx.type = "html";
        ctx.body = loginPage(details.uid, "Wrong login or password.");
        return;
      }
      const otp = form.get("otp") ?? "";
      const mfa = Boolean(account.otp) && otp === account.otp;
      const result = {
        login: {
          accountId: login,
          amr: mfa ? ["pwd", "otp", "mfa"] : ["pwd"],
          ...(acrValues.length ? { acr: mfa ? acrValues[acrValues.length - 1] : acrValues[0] } : {}),
        },
      };
      ctx.redirect(await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: false }));
      return;
    }
    await next();
    if (ctx.path === "/token" && ctx.status === 200 && tamper && ctx.body?.id_token) {
      const mode = tamper;
      tamper = null;
      ctx.body = { ...ctx.body, id_token: await forge(ctx.body.id_token, mode) };
    }
  });

  server.on("request", provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

process.on("SIGTERM", () => server.close(() => process.exit(0)));
