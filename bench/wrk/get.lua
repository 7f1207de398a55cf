-- Plain GET (the framework ceiling): only the summary hooks.
package.path = (debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "?.lua;" .. package.path
require("common")
