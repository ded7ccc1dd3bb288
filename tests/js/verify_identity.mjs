// As a Blink client or indexer checks an Action's identity with the Solana Actions SDK:
// the identity's signatures through web3.js, then verifySignatureInfoForIdentity (memo,
// signature over the reference, findReference). Prints one JSON line.
//   node verify_identity.mjs <rpc url> <identity pubkey> <transaction signature>
import { ACTIONS_CORS_HEADERS, verifySignatureInfoForIdentity } from "@solana/actions";
import { Connection, PublicKey } from "@solana/web3.js";

const [url, identity, signature] = process.argv.slice(2);
const connection = new Connection(url, "confirmed");
const key = new PublicKey(identity);
const infos = await connection.getSignaturesForAddress(key);
const info = infos.find((entry) => entry.signature === signature);
const verified = info
  ? await verifySignatureInfoForIdentity(connection, { publicKey: key }, info)
  : false;
console.log(JSON.stringify({ found: Boolean(info), verified, memo: info?.memo ?? null, cors: ACTIONS_CORS_HEADERS }));
