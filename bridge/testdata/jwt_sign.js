// Makes JWTs with Node's own crypto, independently of the Go JWT
// libraries the bridge uses: node jwt_sign.js '[{spec}, ...]' prints a
// JSON array of tokens. A spec: alg (HS256.. HS512, RS*, PS*, ES*, EdDSA,
// none), key (a private key PEM file, for asymmetric algorithms), secret
// (base64url, for HS*), header (extra header fields), payload (the
// claims), and for an encrypted token jwe ("dir", "A256KW" with secret,
// or "RSA-OAEP-256" with encKey, a public key PEM file); content is
// always A256GCM.
const crypto = require('crypto');
const fs = require('fs');

const b64u = (b) => Buffer.from(b).toString('base64url');

function sign(s) {
  const header = b64u(JSON.stringify(Object.assign({ alg: s.alg, typ: 'JWT' }, s.header || {})));
  const input = Buffer.from(header + '.' + b64u(JSON.stringify(s.payload)));
  const key = s.key ? fs.readFileSync(s.key) : null;
  const hash = 'sha' + s.alg.slice(2);
  let sig;
  if (s.alg === 'none') sig = Buffer.alloc(0);
  else if (s.alg.startsWith('HS')) sig = crypto.createHmac(hash, Buffer.from(s.secret, 'base64url')).update(input).digest();
  else if (s.alg.startsWith('RS')) sig = crypto.sign(hash, input, key);
  else if (s.alg.startsWith('PS')) sig = crypto.sign(hash, input, { key, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST });
  else if (s.alg.startsWith('ES')) sig = crypto.sign(hash, input, { key, dsaEncoding: 'ieee-p1363' });
  else if (s.alg === 'EdDSA') sig = crypto.sign(null, input, key);
  else throw new Error('unknown alg ' + s.alg);
  return input.toString() + '.' + b64u(sig);
}

function encrypt(s, jws) {
  const header = b64u(JSON.stringify({ alg: s.jwe, enc: 'A256GCM', cty: 'JWT' }));
  let cek, ek = '';
  if (s.jwe === 'dir') {
    cek = Buffer.from(s.secret, 'base64url');
  } else if (s.jwe === 'A256KW') {
    cek = crypto.randomBytes(32);
    const w = crypto.createCipheriv('id-aes256-wrap', Buffer.from(s.secret, 'base64url'), Buffer.from('A6A6A6A6A6A6A6A6', 'hex'));
    ek = b64u(Buffer.concat([w.update(cek), w.final()]));
  } else if (s.jwe === 'RSA-OAEP-256') {
    cek = crypto.randomBytes(32);
    ek = b64u(crypto.publicEncrypt({ key: fs.readFileSync(s.encKey), padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, cek));
  } else {
    throw new Error('unknown jwe ' + s.jwe);
  }
  const iv = crypto.randomBytes(12);
  const c = crypto.createCipheriv('aes-256-gcm', cek, iv);
  c.setAAD(Buffer.from(header));
  const ct = Buffer.concat([c.update(jws), c.final()]);
  return [header, ek, b64u(iv), b64u(ct), b64u(c.getAuthTag())].join('.');
}

const specs = JSON.parse(process.argv[2]);
console.log(JSON.stringify(specs.map((s) => (s.jwe ? encrypt(s, sign(s)) : sign(s)))));
