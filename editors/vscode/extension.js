// Starts `deladas lsp` for .deladas files (stdio transport).
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("deladas").get("server.path") || "deladas";
  const server = { command, args: ["lsp"] };
  client = new LanguageClient(
    "deladas",
    "Deladas",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "deladas" }, { scheme: "untitled", language: "deladas" }] }
  );
  context.subscriptions.push(client);
  client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
