/**
 * Typed Dockerfile instructions. Words are kept UNEXPANDED (raw, quotes included) because their
 * expansion depends on build-time state (ARGs in scope, ENV of the image so far); the builder
 * expands them with `expandWord` when it reaches the step. Types only.
 */

/** Where an instruction came from, for error messages: `Dockerfile:7`. */
export interface Loc {
  file: string;
  /** 1-based line of the instruction keyword. */
  line: number;
}

export function locString(loc: Loc): string {
  return `${loc.file}:${loc.line}`;
}

/** Exec form `["a","b"]` (already JSON-decoded, never expanded) or shell form (raw text). */
export type CommandForm = { form: 'exec'; argv: string[] } | { form: 'shell'; cmdline: string };

export interface Heredoc {
  name: string;
  content: string;
  /** `<<-` strips leading tabs; `<<"EOF"` disables expansion. */
  expand: boolean;
}

/** Raw `--name=value` flags of an instruction, in order. */
export interface RawFlag {
  name: string;
  value: string | null;
}

interface Base {
  loc: Loc;
  /** The instruction text, for history `created_by`. */
  text: string;
}

export interface FromInstr extends Base { kind: 'FROM'; image: string; stageName?: string; platform?: string }
export interface ArgInstr extends Base { kind: 'ARG'; args: { name: string; default?: string }[] }
export interface RunInstr extends Base {
  kind: 'RUN';
  cmd: CommandForm;
  /** Raw `--mount` values (expanded and parsed by the builder). */
  mounts: string[];
  network?: string;
  security?: string;
  heredocs: Heredoc[];
}
export interface CopyInstr extends Base {
  kind: 'COPY' | 'ADD';
  sources: string[];
  dest: string;
  /** True if written in JSON form (no expansion of quotes needed, still `$` expanded). */
  json: boolean;
  from?: string;
  chown?: string;
  chmod?: string;
  link: boolean;
  parents: boolean;
  exclude: string[];
  checksum?: string;
  keepGitDir?: string;
  /** ADD --unpack[=bool]; undefined = BuildKit's default (local archives only). */
  unpack?: boolean;
  heredocs: Heredoc[];
}
export interface EnvInstr extends Base { kind: 'ENV'; pairs: [string, string][] }
export interface LabelInstr extends Base { kind: 'LABEL'; pairs: [string, string][] }
export interface WorkdirInstr extends Base { kind: 'WORKDIR'; path: string }
export interface UserInstr extends Base { kind: 'USER'; user: string }
export interface ExposeInstr extends Base { kind: 'EXPOSE'; ports: string[] }
export interface CmdInstr extends Base { kind: 'CMD' | 'ENTRYPOINT'; cmd: CommandForm }
export interface VolumeInstr extends Base { kind: 'VOLUME'; paths: string[]; json: boolean }
export interface ShellInstr extends Base { kind: 'SHELL'; argv: string[] }
export interface StopsignalInstr extends Base { kind: 'STOPSIGNAL'; signal: string }
export interface HealthcheckInstr extends Base {
  kind: 'HEALTHCHECK';
  /** null = `HEALTHCHECK NONE`. */
  check: null | {
    cmd: CommandForm;
    /** Nanoseconds, like the image config. */
    interval?: number;
    timeout?: number;
    startPeriod?: number;
    startInterval?: number;
    retries?: number;
  };
}
export interface OnbuildInstr extends Base { kind: 'ONBUILD'; trigger: string }
export interface MaintainerInstr extends Base { kind: 'MAINTAINER'; name: string }

export type Instruction =
  | FromInstr | ArgInstr | RunInstr | CopyInstr | EnvInstr | LabelInstr | WorkdirInstr | UserInstr | ExposeInstr
  | CmdInstr | VolumeInstr | ShellInstr | StopsignalInstr | HealthcheckInstr | OnbuildInstr | MaintainerInstr;

export interface ParsedDockerfile {
  file: string;
  escape: string;
  /** ARGs before the first FROM. */
  globalArgs: ArgInstr[];
  /** Each stage: its FROM and the instructions after it. */
  stages: { from: FromInstr; instructions: Instruction[] }[];
}
