-- Orket's default policy. A project's policies/default.lua replaces this file; other files
-- in a project's policies/ add to it. See docs/policies.md.

-- Secrets stay out of reach of every agent. In any letter case: files from Windows or macOS
-- come as SERVER.PEM or Prod.ENV, and there the filesystem opens .ENV as .env.
deny {
  tool = "*_file", path = { "**/*.env", "**/.env.*", "**/*.pem", "**/id_rsa*" }, ignore_case = true,
  reason = "secrets files are off limits",
  remedy = "Do not read or change credentials; ask the developer with request_input if you need a setting.",
}

-- Deleting is irreversible: a developer approves each one.
ask {
  tool = "delete_file",
  reason = "deleting files needs a developer's approval",
  remedy = "Wait for approval, or leave the file and say in a comment why it should go.",
}

-- CI configuration runs with the forge's secrets (the workflows `orket init --forge` writes
-- hold ORKET_API_KEY): an agent that could rewrite it could send them anywhere. Writing,
-- moving or deleting it needs a developer's approval; reading it does not. The folders
-- that hold it are named too: moving .github away and a folder of the agent's own in its
-- place would change the workflows without writing any of them. In any letter case, as
-- the secrets above: on a case-insensitive checkout .GITHUB/workflows is .github/workflows.
local CI = {
  ".github", ".github/workflows", ".github/actions", ".gitea", ".gitea/workflows", ".gitea/actions", ".forgejo",
  ".forgejo/workflows", ".forgejo/actions", ".gitlab-ci", ".circleci", ".woodpecker", ".buildkite",
  ".github/workflows/**", ".github/actions/**", ".gitea/workflows/**", ".gitea/actions/**",
  ".forgejo/workflows/**", ".forgejo/actions/**", ".gitlab-ci.yml", ".gitlab-ci/**", ".circleci/**",
  ".woodpecker.yml", ".woodpecker.yaml", ".woodpecker/**", ".drone.yml", ".buildkite/**", ".travis.yml",
  "Jenkinsfile", "azure-pipelines.yml", "bitbucket-pipelines.yml",
}
local READS = { read_file = true, list_directory = true, search_files = true }
ask {
  tool = "*", path = CI, ignore_case = true,
  when = function(call) return not READS[call.tool] end,
  reason = "CI configuration runs with the forge's secrets: changing it needs a developer's approval",
  remedy = "Wait for approval, or describe the change to the CI configuration in a comment for a developer to make.",
}
