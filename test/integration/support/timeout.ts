// Integration tests wait on a real cluster: jest's 5 s default is far too short, and a project's
// config cannot set testTimeout (it is a global option), so every integration file gets it here.
import { jest } from '@jest/globals';

jest.setTimeout(180_000);
