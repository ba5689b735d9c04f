/**
 * The file backend plug-in: its config section `file`, checks and
 * constructor (the contract: backends/backend.ts).
 */
import * as path from 'node:path';
import type { BackendDescriptor } from '../backend';
import { FileBackend } from './file-backend';
import { fileDropReasons, fileSchema } from './options';
import type { FileConfig, FileSection } from './types';

export type { FileConfig } from './types';

export const fileBackend: BackendDescriptor<FileConfig> = {
  name: 'file',
  schema: fileSchema,
  dropReasons: fileDropReasons,
  resolve(section: FileSection, { baseDir, problems }) {
    const template = section.path;
    if (!template.includes('{flavor}')) problems.push('file.path: must contain {flavor}');
    const unknown = template.match(/\{[^}]*\}/g)?.filter((p) => p !== '{flavor}' && p !== '{date}') ?? [];
    if (unknown.length > 0) problems.push(`file.path: unknown placeholder ${unknown[0]} (only {flavor} and {date})`);
    return { ...section, path: path.resolve(baseDir, template), fileMode: parseInt(section.fileMode, 8) };
  },
  summary: (config) => config.path,
  create: (config, { flavors }) => new FileBackend(config, flavors),
};
