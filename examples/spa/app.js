// The SPA never sees a token: the BFF holds them, the browser holds an HttpOnly cookie.
// Every call to /bff/api and every state-changing call carries the CSRF header.
"use strict";

const CSRF_HEADER = { "X-Tokensmith-CSRF": "1" };
const $ = (id) => document.getElementById(id);

function show(signedIn, text) {
  $("status").textContent = text;
  $("sign-in").hidden = signedIn;
  for (const id of ["load", "add", "sign-out"]) {
    $(id).hidden = !signedIn;
  }
}

async function checkSession() {
  const response = await fetch("/bff/session", { credentials: "same-origin" });
  if (!response.ok) {
    show(false, "You are not signed in.");
    return;
  }
  const session = await response.json();
  show(true, `Signed in as ${session.name || session.sub} (${session.email || "no email"}).`);
}

async function callApi(method, path) {
  const response = await fetch(path, {
    method,
    credentials: "same-origin",
    headers: CSRF_HEADER,
  });
  if (response.status === 401) {
    show(false, "Your session ended: please sign in again.");
    $("output").textContent = "";
    return;
  }
  $("output").textContent = `${response.status}\n${await response.text()}`;
}

async function signOut() {
  await fetch("/bff/logout", { method: "POST", credentials: "same-origin", headers: CSRF_HEADER });
  $("output").textContent = "";
  show(false, "You signed out.");
}

$("load").addEventListener("click", () => callApi("GET", "/bff/api/orders"));
$("add").addEventListener("click", () => callApi("POST", "/bff/api/orders"));
$("sign-out").addEventListener("click", signOut);
checkSession();
