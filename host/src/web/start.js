// Starts the workspace once every script of it has loaded (the scripts run in order).
"use strict";

// ---- start ----------------------------------------------------------------------------------

window.addEventListener("hashchange", route);
api("/session").then(signedIn, () => showSignIn());

