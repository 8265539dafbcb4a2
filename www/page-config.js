// page-config.js - what the page may do that depends on the deployment.
// nginx answers this path itself (luckydice-locations.conf) from the
// operator's settings in luckydice-site.conf; this file is only what
// another server would serve: the safe defaults.
//
// tokenLinks: whether a ?token= link signs the browser in (demos only).
export const tokenLinks = false;
